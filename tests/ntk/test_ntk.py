"""ntk: the linearisation is the model to first order, both models agree as 1/alpha, the fits recover planted
numbers, a tiny run end to end, bad args exit 2."""

import json
import math

import pytest
from cli_helpers import run_harness
from harness.plugins.ntk.fit import alpha_needed, loglog_slope

from harness.errors import UsageError


@pytest.fixture
def problem(one_thread):
    import torch
    from harness.plugins.ntk.lazy import LazyConfig, make_problem

    config = LazyConfig(d=4, width=32, n_train=16, n_test=32, target="teacher", dt=0.05)
    return config, make_problem(config, torch.Generator().manual_seed(0))


def test_linearisation_is_the_model_to_first_order(problem):
    import torch

    config, p = problem
    h, w0, x = p["h"], p["w0"], p["x"]
    direction = torch.randn(w0.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    _, tangent = torch.func.jvp(lambda w: h(w, x), (w0,), (direction,))
    assert torch.allclose(tangent, p["jacobian"] @ direction, atol=1e-10)  # jacrev and jvp: the same Dh(w0)

    def remainder(eps):
        return (h(w0 + eps * direction, x) - h(w0, x) - eps * p["jacobian"] @ direction).norm().item()

    errors = [remainder(eps) for eps in (1e-2, 5e-3, 2.5e-3)]
    assert errors[0] > 0
    for big, small in zip(errors, errors[1:]):
        assert 3.6 < big / small < 4.4  # O(eps^2): halving the step quarters the error


def test_batched_forward_is_the_module(problem):
    import torch
    from harness.plugins.ntk.lazy import batched_forward

    config, p = problem
    shifted = p["w0"] + 0.1
    ws = torch.stack([p["w0"], shifted])
    expected = torch.stack([p["h"](p["w0"], p["x"]), p["h"](shifted, p["x"])])
    assert torch.allclose(batched_forward(ws, p["x"], config.d, config.width), expected, atol=1e-12)


def test_gap_shrinks_as_one_over_alpha_and_small_steps_agree(problem):
    from harness.plugins.ntk.lazy import train_side_by_side

    config, p = problem
    result = train_side_by_side(p, [10.0, 100.0, 1000.0], config, [0.05, 5.0])
    early, late = zip(*result["pred"])
    assert all(g > 0 for g in late)
    scaled = [alpha * gap for alpha, gap in zip((10, 100, 1000), late)]
    assert abs(scaled[1] / scaled[2] - 1) < 0.02 and abs(scaled[0] / scaled[2] - 1) < 0.2
    assert early[-1] < late[-1] / 20  # one step in: the models agree to second order in the step
    assert result["loss"][-1][1] < result["loss"][-1][0]  # and the model did train


def test_alpha_needed_and_slope_recover_planted_values():
    alphas = [1, 3, 10, 30, 100]
    # deviation = c / alpha: the alpha needed for epsilon is c / epsilon, exactly under log-log interpolation
    assert alpha_needed(alphas, [0.5 / a for a in alphas], 0.01) == pytest.approx(50.0)
    assert math.isnan(alpha_needed(alphas, [0.5 / a for a in alphas], 1e-4))  # beyond the grid: not extrapolated
    assert math.isnan(alpha_needed(alphas, [0.5 / a for a in alphas], 1.0))  # the smallest alpha already suffices
    times = [1, 2, 4, 8, 16, 32]
    wobble = [1.05, 0.97, 1.02, 0.99, 1.03, 0.96]
    slope, stderr = loglog_slope(times, [3 * t**1.5 * w for t, w in zip(times, wobble)])
    assert abs(slope - 1.5) < 0.05 and 0 < stderr < 0.05
    assert loglog_slope(times, [2 * t for t in times])[0] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "args, message",
    [
        ({"target": "noise"}, "choose one of teacher, random"),
        ({"alphas": "10,1"}, "increasing"),
        ({"alphas": "1,x"}, "positive numbers"),
        ({"t_min": 10.0, "horizon": 5.0}, "0 < t_min < horizon"),
        ({"dt": 3.0}, "dt=3.0"),
    ],
)
def test_bad_args_are_usage_errors(args, message):
    from harness.plugins.ntk.task import NTKValidity

    with pytest.raises(UsageError, match=message):
        NTKValidity(**args)


def test_tiny_run_end_to_end_and_bad_args_exit_2(tmp_path):
    (tmp_path / "ntk_tiny.yaml").write_text(
        "task: ntk\nargs: {d: 4, width: 16, n_train: 8, n_test: 16, alphas: '1,10,100', epsilon: 0.001,"
        " horizon: 10.0, times_per_decade: 2, target: random}\n"
    )
    out = tmp_path / "runs"
    done = run_harness("run", "--task", "ntk_tiny", "--include-path", tmp_path, "--out", out, "--json", timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads(done.stdout)["metrics"]
    assert math.isfinite(metrics["fitted_exponent"]) and metrics["fit_points"] >= 2
    assert {"alpha_needed@T=1", "alpha_needed@T=3.16", "alpha_needed@T=10", "scaled_gap@T=10"} <= set(metrics)
    run_dir = next(out.glob("ntk_tiny-*"))
    for png in ("deviation_curves.png", "alpha_needed.png"):
        assert (run_dir / png).stat().st_size > 1000
    bad = run_harness(
        "run", "--task", "ntk_tiny", "--include-path", tmp_path, "--task-args", "alphas=10,1", "--out", out
    )
    assert bad.returncode == 2 and "increasing" in bad.stderr


def test_one_step_gap_is_second_order_in_the_step(problem):
    """After one GD step both models sit at the same parameters (same gradient at w0); their predictions then differ
    by the second-order remainder of h, so halving the step quarters the gap."""
    from dataclasses import replace

    from harness.plugins.ntk.lazy import train_side_by_side

    config, p = problem
    gaps = []
    for dt in (0.02, 0.01):
        result = train_side_by_side(p, [10.0], replace(config, dt=dt), [dt])
        assert result["param"][0][0] < 1e-12  # identical parameters after the first step
        gaps.append(result["pred"][0][0])
    assert 3.6 < gaps[0] / gaps[1] < 4.4


def test_decade_exponents_are_the_local_slopes():
    from harness.plugins.ntk.fit import decade_exponents

    times = [10 ** (k / 4) for k in range(13)]  # 1 .. 1000
    needed = [t if t <= 10 else 10 * (t / 10) ** 2 if t <= 100 else 1000 for t in times]  # slope 1, then 2, then 0
    slopes = decade_exponents(times, needed)
    assert list(slopes) == ["decade_exponent@T=1-10", "decade_exponent@T=10-100", "decade_exponent@T=100-1e+03"]
    assert [round(s, 6) for s in slopes.values()] == [1.0, 2.0, 0.0]


@pytest.fixture
def tight(one_thread):
    import torch
    from harness.plugins.ntk.lazy import LazyConfig
    from harness.plugins.ntk.tight import make_tight_problem

    config = LazyConfig(n_train=32, target="tight", dt=0.5, horizon=100.0, spectrum_min=1e-3)
    return config, make_tight_problem(config, torch.Generator().manual_seed(0))


def test_tight_problem_is_the_diagonal_quadratic_model(tight):
    import torch

    config, p = tight
    K = config.n_train
    direction = torch.randn(K, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.allclose(
        torch.func.jacrev(p["h"])(direction, p["x"])[:K], torch.diag(p["jacobian"][:K].diag() + direction)
    )
    kernel = p["jacobian"][:K] @ p["jacobian"][:K].T / K
    assert torch.allclose(kernel, torch.diag(p["eigenvalues"]))  # the empirical NTK is diag(mu)
    mu = sorted(p["eigenvalues"].tolist())
    assert config.spectrum_min <= mu[0] and mu[-1] <= 1 and p["lambda_max"] == mu[-1]
    cells = [math.log(m) / math.log(config.spectrum_min) * K for m in mu]  # one eigenvalue in each log-cell
    assert [math.floor(c) for c in cells] == list(range(K - 1, -1, -1))
    assert sorted(set(p["y"].abs().tolist())) == [1.0]


def test_tight_gap_follows_the_closed_form(one_thread):
    """One direction, alpha large, small steps: the sup gap times alpha is (2 b y^2 / a^2) max_{s <= T} phi(s)."""
    import torch
    from harness.plugins.ntk.lazy import LazyConfig, train_side_by_side
    from harness.plugins.ntk.tight import make_tight_problem, phi

    config = LazyConfig(n_train=1, target="tight", dt=0.01, curvature=0.7, spectrum_min=0.3)
    p = make_tight_problem(config, torch.Generator().manual_seed(3))
    times = [0.5, 1.0, 1.59, 3.0, 8.0]  # kernel time = the direction's own time s (it is the largest eigenvalue)
    result = train_side_by_side(p, [1e3], config, times)
    a2 = p["jacobian"][0, 0].item() ** 2
    for T, gap in zip(times, result["pred"][0]):
        peak = max(phi(T * k / 1000) for k in range(1001))
        assert 1e3 * gap == pytest.approx(2 * 0.7 / a2 * peak, rel=0.02), T
    assert result["loss"][0][-1] < 1e-3  # and both models have fitted y by s = 8


def test_tight_exponent_is_one_until_the_spectrum_ends(tight):
    """The construction's alpha needed grows like T over the window inside its spectrum, and stops growing once
    every direction has converged (spectrum_min = 0.1: after T ~ 10)."""
    from dataclasses import replace

    import torch
    from harness.plugins.ntk.fit import decade_exponents
    from harness.plugins.ntk.lazy import train_side_by_side
    from harness.plugins.ntk.tight import make_tight_problem

    config, p = tight
    alphas = [0.316, 1, 3.16, 10, 31.6, 100, 316, 1000, 3160]
    times = [10 ** (k / 4) for k in range(9)]  # 1 .. 100
    for spectrum_min, low, high in ((1e-3, 0.9, 1.1), (0.1, -0.1, 0.4)):
        c = replace(config, spectrum_min=spectrum_min)
        problem = p if spectrum_min == 1e-3 else make_tight_problem(c, torch.Generator().manual_seed(0))
        sup = train_side_by_side(problem, alphas, c, times)["pred"]
        needed = [alpha_needed(alphas, [row[j] for row in sup], 1e-3) for j in range(len(times))]
        late = decade_exponents(times, needed)["decade_exponent@T=10-100"]
        assert low < late < high, (spectrum_min, late)
        if spectrum_min == 1e-3:
            assert 0.93 < loglog_slope(times, needed)[0] < 1.07
