"""leap: the leap of each target, the targets' values, hand-written SGD against autograd, the exponent fit on
planted step counts, a tiny run end to end, bad args exit 2."""

import json
import math

import pytest
from cli_helpers import run_harness
from harness.plugins.leap.fit import loglog_slope
from harness.plugins.leap.targets import NAMED, evaluate, hermite, leap, parse_target, support

from harness.errors import UsageError


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("staircase", 1),
        ("leap2", 2),
        ("leap3", 3),
        ("x1*x2*x3 + x1*x2 + x1", 1),  # the order of the terms does not matter
        ("x1 + x2 + x3", 1),
        ("x1*x2", 2),
        ("x1*x2 + x1*x2*x3*x4", 2),
        ("x1*x2*x3 + x4*x5 + x1*x4*x6", 2),  # {4,5} first is 2, then {1,4,6} adds 2, then {1,2,3} adds 2
        ("x1*x2*x3*x4 + x1*x2*x3*x4*x5*x6*x7", 4),
    ],
)
def test_leap_of_boolean_targets(spec, expected):
    assert leap(parse_target(spec)) == expected


@pytest.mark.parametrize(
    "spec, expected", [("x1^2", 2), ("x1^4", 4), ("x1 + x1*x2^2", 2), ("x1 + x1^3 + x2", 1), ("x1^2 + x1^2*x2^3", 3)]
)
def test_leap_of_hermite_targets_counts_degrees(spec, expected):
    assert leap(parse_target(spec, "gaussian")) == expected


def test_named_targets_and_their_support():
    assert [leap(parse_target(name)) for name in NAMED] == [1, 2, 3]
    assert support(parse_target("x3 + x1*x3")) == [0, 2]


@pytest.mark.parametrize(
    "spec, data, message",
    [
        ("x1 + y2", "boolean", "not a factor"),
        ("x0", "boolean", "not a factor"),
        ("x1^2", "boolean", "use data=gaussian"),
        ("x1 + x1", "boolean", "appears twice"),
    ],
)
def test_bad_targets(spec, data, message):
    with pytest.raises(UsageError, match=message):
        parse_target(spec, data)


def test_target_values(one_thread):
    import torch

    x = torch.tensor([[1.0, -1.0, -1.0, 1.0]])
    assert evaluate(parse_target("staircase"), x).item() == 1 - 1 + 1  # x1 + x1 x2 + x1 x2 x3
    z = torch.linspace(-2, 2, 9)
    assert torch.allclose(hermite(2, z), (z**2 - 1) / math.sqrt(2))
    assert torch.allclose(hermite(3, z), (z**3 - 3 * z) / math.sqrt(6))
    gaussian = torch.randn(200_000, 3, generator=torch.Generator().manual_seed(0))
    values = evaluate(parse_target("x1^2 + x1*x2 + x3^3", "gaussian"), gaussian)
    assert abs(values.pow(2).mean().item() - 3) < 0.1  # orthonormal terms: E[f^2] = number of terms


def test_sgd_step_is_the_mean_field_gradient_step(one_thread):
    import torch
    from harness.plugins.leap.sgd import OnlineConfig, forward, init_params, sgd_step

    config = OnlineConfig(d=6, width=5, runs=3)
    generator = torch.Generator().manual_seed(0)
    params = init_params(config, generator)
    x, y = torch.randn(3, 6, generator=generator), torch.randn(3, generator=generator)
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    loss = 0.5 * (forward(leaves, x.unsqueeze(1)).squeeze(1) - y).pow(2).sum()
    grads = dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))
    sgd_step(params, x, y, lr=0.3)
    m, d = config.width, config.d
    expected = {
        "a": leaves["a"] - 0.3 * m * grads["a"],
        "W": leaves["W"] - 0.3 / d * m * grads["W"],
        "b": leaves["b"] - 0.3 / d * m * grads["b"],
    }
    for name in params:
        assert torch.allclose(params[name], expected[name].detach(), atol=1e-6), name


def test_exponent_fit_recovers_planted_slopes(tmp_path):
    from types import SimpleNamespace

    from harness.plugins.leap.task import Leap

    xs = [16, 32, 64, 128]
    noise = [0.02, -0.015, 0.01, -0.02]
    slope, stderr = loglog_slope(xs, [5 * x**2 * 10**e for x, e in zip(xs, noise)])
    assert abs(slope - 2) < 0.05 and stderr > 0

    points = []
    for target, power, leap_value in (("staircase", 1.0, 1), ("leap3", 2.0, 3)):
        for d in xs:
            runs = {f"log10_steps@run={k}": math.log10(7 * d**power) + 0.01 * ((k + d) % 3 - 1) for k in range(4)}
            points.append({"args": {"target": target, "d": d}, "seed": 0, "metrics": {"leap": leap_value, **runs}})
    ctx = SimpleNamespace(path=lambda name: tmp_path / name)
    summary = Leap.sweep_summary(points, ctx)
    assert summary["exponent@target=staircase"] == pytest.approx(1.0, abs=0.03)
    assert summary["exponent@target=leap3"] == pytest.approx(2.0, abs=0.03)
    assert summary["conjecture@target=leap3"] == 2 and summary["conjecture@target=staircase"] == 1
    assert 0 < summary["exponent@target=leap3_stderr"] < 0.03
    assert (tmp_path / "steps_vs_d.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "args, message",
    [
        ({"target": "x1*x9", "d": 8}, "give d >= 9"),
        ({"data": "sphere"}, "choose one of boolean, gaussian"),
        ({"threshold": 1.5}, "threshold=1.5"),
        ({"runs": 0}, "runs=0"),
    ],
)
def test_bad_args_are_usage_errors(args, message):
    from harness.plugins.leap.task import Leap

    with pytest.raises(UsageError, match=message):
        Leap(**args)


def test_tiny_run_end_to_end_and_bad_args_exit_2(tmp_path):
    (tmp_path / "leap_tiny.yaml").write_text("task: leap\nargs: {target: staircase, d: 8, runs: 2, width: 32}\n")
    out = tmp_path / "runs"
    done = run_harness("run", "--task", "leap_tiny", "--include-path", tmp_path, "--out", out, "--json", timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads(done.stdout)["metrics"]
    assert metrics["reached"] == 1 and metrics["leap"] == 1 and 1 < metrics["log10_steps"] < 5
    assert metrics["pickup_log10_step@x1"] <= metrics["pickup_log10_step@x3"]  # the staircase is climbed in order
    assert (next(out.glob("leap_tiny-*")) / "loss_curve.png").stat().st_size > 1000
    bad = run_harness(
        "run", "--task", "leap_tiny", "--include-path", tmp_path, "--task-args", "target=x1^2", "--out", out
    )
    assert bad.returncode == 2 and "use data=gaussian" in bad.stderr
