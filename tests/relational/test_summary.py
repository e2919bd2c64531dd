"""sweep_summary: the smallest n reaching each threshold per model (also seed by seed), and the plots against the
embedding dimension."""

import math

import pytest
from harness.plugins.relational.task import Relational


class Context:
    def __init__(self, folder):
        self.folder = folder

    def path(self, name):
        return self.folder / name


def point(n, seed, accuracy, **args):
    return {
        "args": {"n": n, **args},
        "seed": seed,
        "run_id": f"r{n}{seed}",
        "dir": None,
        "metrics": {"test_accuracy": accuracy, "test_error": 1 - accuracy, "test_loss": 1 - accuracy},
    }


def test_n_to_threshold_uses_the_mean_over_seeds(tmp_path):
    points = [
        point(16, 0, 0.95, attention="identity"),
        point(16, 1, 0.80, attention="identity"),  # mean 0.875
        point(64, 0, 0.90, attention="identity"),
        point(64, 1, 0.92, attention="identity"),
        point(16, 0, 0.5, attention="sdpa"),
        point(64, 0, 0.7, attention="sdpa"),
    ]
    metrics = Relational.sweep_summary(points, Context(tmp_path))
    assert metrics["n_to_0.9@attention=identity"] == 64
    assert math.isinf(metrics["n_to_0.9@attention=sdpa"])
    assert metrics["test_accuracy_at_max_n@attention=sdpa"] == 0.7
    assert "n_to_error_0.05@attention=sdpa" not in metrics  # regression sweeps have no error threshold
    assert not (tmp_path / "n_needed_vs_dimension.png").exists()
    assert not (tmp_path / "test_error_vs_dimension.png").exists()


def test_next_token_sweep_over_dimension_plots_n_needed(tmp_path):
    points = []
    for d, needed in ((16, 32), (32, 64), (64, 128)):
        for n in (16, 32, 64, 128):
            points.append(point(n, 0, 0.97 if n >= needed else 0.5, setting="next_token", d_model=d, attention="sdpa"))
            points.append(point(n, 0, 0.995, setting="next_token", d_model=d, attention="identity"))
    metrics = Relational.sweep_summary(points, Context(tmp_path))
    assert metrics["n_to_error_0.05@attention=sdpa,d_model=64"] == 128
    assert metrics["n_to_error_0.05@attention=identity,d_model=64"] == 16
    assert math.isinf(metrics["n_to_loss_0.01@attention=sdpa,d_model=64"])  # loss 0.03 at accuracy 0.97 here
    assert metrics["n_to_loss_0.01@attention=identity,d_model=64"] == 16
    for plot in ("n_needed_vs_dimension.png", "test_error_vs_dimension.png", "test_loss_vs_n_by_dimension.png"):
        assert (tmp_path / plot).stat().st_size > 1000


def test_the_papers_loss_threshold_read_over_seeds(tmp_path):
    """n to test loss <= 0.01 on the mean curve, and per seed: the geometric mean of the seeds' n with its t
    interval in log2 n (checked against scipy), or inf with the count of seeds that got there."""
    from scipy import stats

    points = []
    for seed, needed in ((0, 64), (1, 128), (2, 256)):
        for n in (32, 64, 128, 256, 512):
            points.append(point(n, seed, 0.995 if n >= needed else 0.6, setting="next_token", attention="identity"))
            points.append(
                point(n, seed, 0.995 if seed < 2 and n >= 512 else 0.9, setting="next_token", attention="sdpa")
            )
    metrics = Relational.sweep_summary(points, Context(tmp_path))
    assert metrics["n_to_loss_0.01@attention=identity"] == 256  # the mean loss gets there only when all seeds do
    assert metrics["n_to_error_0.05@attention=identity"] == 256
    assert metrics["n_to_loss_0.01_reached@attention=identity"] == 3
    logs = [6, 7, 8]
    half = stats.t.ppf(0.975, 2) * stats.sem(logs)
    assert metrics["n_to_loss_0.01_geomean@attention=identity"] == 128
    assert math.isclose(metrics["n_to_loss_0.01_geomean@attention=identity_ci_low"], 2 ** (7 - half))
    assert math.isclose(metrics["n_to_loss_0.01_geomean@attention=identity_ci_high"], 2 ** (7 + half))
    assert metrics["n_to_loss_0.01_reached@attention=sdpa"] == 2
    assert math.isinf(metrics["n_to_loss_0.01_geomean@attention=sdpa"])
    assert math.isinf(metrics["n_to_loss_0.01@attention=sdpa"])


def test_regression_sweep_reads_loss_and_accuracy_seed_by_seed(tmp_path):
    """Claim (i) (regression, no d_model): the paper's loss threshold beside accuracy 0.9, both on the mean curve
    and per seed, and the accuracy-and-loss figure; no error threshold (that is claim (ii)'s)."""
    points = []
    for seed, needed in ((0, 32), (1, 64), (2, 64)):
        for n in (16, 32, 64, 128):
            points.append(point(n, seed, 0.995 if n >= needed else 0.85, attention="identity"))
            points.append(point(n, seed, 0.92 if n >= 128 and seed else 0.6, attention="sdpa"))
    metrics = Relational.sweep_summary(points, Context(tmp_path))
    assert metrics["n_to_loss_0.01@attention=identity"] == 64  # mean loss 0.005 there, 0.102 at n=32
    assert metrics["n_to_0.9@attention=identity"] == 64  # mean accuracy 0.898 at n=32: one seed is not enough
    assert metrics["n_to_loss_0.01_reached@attention=identity"] == 3
    assert metrics["n_to_loss_0.01_geomean@attention=identity"] == pytest.approx(2 ** (17 / 3))
    assert metrics["n_to_0.9_reached@attention=identity"] == 3
    assert metrics["n_to_0.9_geomean@attention=identity"] == pytest.approx(2 ** (17 / 3))
    assert metrics["n_to_0.9_reached@attention=sdpa"] == 2  # seed 0 stays at 0.6
    assert math.isinf(metrics["n_to_0.9_geomean@attention=sdpa"])
    assert math.isinf(metrics["n_to_0.9@attention=sdpa"])  # mean 0.81 at n=128
    assert metrics["n_to_loss_0.01_reached@attention=sdpa"] == 0
    assert "n_to_error_0.05@attention=sdpa" not in metrics
    assert (tmp_path / "accuracy_and_loss_vs_n.png").stat().st_size > 1000
    assert not (tmp_path / "test_loss_vs_n_by_dimension.png").exists()
