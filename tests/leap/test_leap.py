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
            for seed in (0, 1, 2):  # the sweep's seeds: each point holds 2 networks, so 6 curves per target
                runs = {
                    f"log10_steps@run={k}": math.log10(7 * d**power) + 0.01 * ((k + d + seed) % 3 - 1) for k in (0, 1)
                }
                points.append(
                    {"args": {"target": target, "d": d}, "seed": seed, "metrics": {"leap": leap_value, **runs}}
                )
    ctx = SimpleNamespace(path=lambda name: tmp_path / name)
    summary = Leap.sweep_summary(points, ctx)
    assert summary["exponent@target=staircase"] == pytest.approx(1.0, abs=0.03)
    assert summary["exponent@target=leap3"] == pytest.approx(2.0, abs=0.03)
    assert summary["conjecture@target=leap3"] == 2 and summary["conjecture@target=staircase"] == 1
    assert 0 < summary["exponent@target=leap3_stderr"] < 0.03
    assert (tmp_path / "steps_vs_d.png").stat().st_size > 1000
    from harness.plugins.leap.fit import curves

    assert len(curves(points)["leap3"]["curves"]) == 6  # seeds add curves, none overwrites another


def test_crossing_interpolates_in_log_step_and_log_loss():
    from harness.plugins.leap.sgd import crossing

    # loss 0.2 at step 5, 0.05 at step 10: 0.1 is halfway in log loss, so halfway in log step, 5 * sqrt(2)
    assert crossing(10, 0.05, 5, 0.2, 0.1) == pytest.approx(5 * math.sqrt(2))
    assert crossing(10, 0.1, 5, 0.4, 0.1) == pytest.approx(10)  # reached exactly at the later evaluation
    assert crossing(1, 0.05, 0, math.inf, 0.1) == 1  # below at the first evaluation: no earlier point


def test_terms_criterion_and_the_other_count(one_thread):
    """On the cube the coefficients reach 0.5 before the loss reaches 0.1 (the loss needs all three near 1), and
    training stops at the chosen criterion, so the other one may be unmet (-1)."""
    import torch
    from harness.plugins.leap.sgd import OnlineConfig, train_online

    terms = parse_target("staircase")
    loss = train_online(terms, OnlineConfig(d=8, runs=3, width=32), torch.Generator().manual_seed(1))
    assert min(loss["steps"]) > 0 and min(loss["term_steps"]) > 0
    assert all(t < s for t, s in zip(loss["term_steps"], loss["steps"]))
    early = train_online(
        terms, OnlineConfig(d=8, runs=3, width=32, criterion="terms"), torch.Generator().manual_seed(1)
    )
    assert early["term_steps"] == pytest.approx(loss["term_steps"])  # the same stream, the same counts
    assert early["curve"][0][-1] < loss["curve"][0][-1]


def test_shape_fits_tell_d_log_d_from_a_power():
    """On d = 32..512, c d ln d and c d^1.3 differ by a bend of ~0.05 in log10 steps: the fits and the curvature
    must tell a planted d ln d from a planted d^1.3, and the interval over noisy curves must exclude the wrong one."""
    import numpy as np
    from harness.plugins.leap.fit import curvature, fits, shape_fits

    ds = [32, 64, 128, 256, 512]
    dlogd = [float(np.log10(7 * d * np.log(d))) for d in ds]
    out = shape_fits(ds, dlogd, k=1)
    assert out["dk_log_rms"] < 1e-12 < 0.01 < out["d13_rms"] and out["curvature"] < -0.05
    power = [float(np.log10(3 * d**1.3)) for d in ds]
    out = shape_fits(ds, power, k=1)
    assert out["d13_rms"] < 1e-12 < 0.01 < out["dk_log_rms"] and abs(out["curvature"]) < 1e-9
    assert curvature(ds, dlogd) == pytest.approx(curvature(ds, list(np.log10(np.log(ds)))))

    noise = np.random.default_rng(0).normal(0, 0.02, (6, len(ds)))
    samples = [
        {
            "args": {"target": target, "d": d},
            "seed": seed,
            "metrics": {"leap": 2, **{f"log10_steps@run={k}": planted[i] + noise[2 * seed + k, i] for k in (0, 1)}},
        }
        for target, planted in (("dlogd", dlogd), ("power", power))
        for seed in (0, 1, 2)
        for i, d in enumerate(ds)
    ]
    result = fits(samples)
    assert result["networks@target=dlogd"] == 6 and result["seeds@target=dlogd"] == 3
    assert result["d13_minus_dk_log_low@target=dlogd"] > 0  # d ln d fits better, and the interval says so
    assert result["d13_minus_dk_log_high@target=power"] < 0
    assert result["curvature_high@target=dlogd"] < 0 < result["curvature_high@target=power"]
    assert result["curvature_low@target=dlogd"] < result["curvature_dk_log@target=dlogd"]


@pytest.mark.parametrize(
    "args, message",
    [
        ({"target": "x1*x9", "d": 8}, "give d >= 9"),
        ({"data": "sphere"}, "choose one of boolean, gaussian"),
        ({"threshold": 1.5}, "threshold=1.5"),
        ({"runs": 0}, "runs=0"),
        ({"criterion": "accuracy"}, "choose one of loss, terms"),
        ({"device": "tpu"}, "choose one of cpu, cuda"),
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
