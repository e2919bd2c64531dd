"""The fact tasks end to end: fact_mlp reaches a stationary point where the FACT holds, fact_rfm writes its series and
plots, and bad arguments exit with status 2."""

from __future__ import annotations

import json

import pytest
from harness.plugins.fact.mlp import FactMLP
from harness.plugins.fact.task import FactRFM

from harness.errors import UsageError
from harness.evaluation import RunContext
from harness.store import Run, read_jsonl

pytestmark = pytest.mark.usefixtures("one_thread")


def context(tmp_path, task: str) -> RunContext:
    return RunContext(run=Run.open(tmp_path, {}, {"task": task}), model=None, seed=0)


def test_fact_mlp_correlation_is_near_one_at_a_stationary_point(tmp_path):
    task = FactMLP(
        dataset="lowrank",
        n=48,
        d=6,
        depth=2,
        width=16,
        activation="tanh",
        lr=0.3,
        weight_decay=0.05,
        max_steps=6000,
        grad_tol=1e-5,
        log_every=200,
    )
    ctx = context(tmp_path, "fact_mlp")
    metrics = task.run(ctx)
    assert metrics["converged"] == 1.0 and metrics["grad_norm"] < 1e-5
    for layer in (0, 1):
        assert metrics[f"layer{layer}/fact_correlation"] > 0.99
        assert metrics[f"layer{layer}/fact_residual"] < 0.01  # the scale too: W^T W = F, not only proportional
        assert metrics[f"layer{layer}/fact_shuffled_residual"] > 0.5  # the control (g_{i-1} with h_i) does not match
    series = read_jsonl(ctx.path("metrics.jsonl"))
    first = series[0]
    assert first["step"] == 0 and abs(first["layer0/fact_correlation"]) < 0.9  # at initialisation it does not hold
    assert (ctx.path("correlations.png")).stat().st_size > 1000


def test_fact_rfm_parity_writes_series_and_plots(tmp_path):
    task = FactRFM(data="parity", n=200, n_test=200, d=10, k=2, kernel="laplace", bandwidth=10.0, iterations=2)
    ctx = context(tmp_path, "fact_rfm")
    metrics = task.run(ctx)
    series = read_jsonl(ctx.path("metrics.jsonl"))
    assert [r["step"] for r in series] == [0, 1, 2]
    assert series[0]["support_mass"] == pytest.approx(0.2)  # k/d at M = I
    assert metrics["support_mass"] > 0.5 and metrics["test_accuracy"] > 0.9
    for png in ("accuracy.png", "feature_matrix.png"):
        assert ctx.path(png).stat().st_size > 1000


@pytest.mark.parametrize(
    "task,args,message",
    [
        ("fact_rfm", "kernel=cosine", "unknown kernel 'cosine'"),
        ("fact_mlp", "weight_decay=0", "weight_decay=0: give weight_decay > 0"),
        ("fact_rfm_tabular", "datasets=iris,mnist", "unknown dataset 'mnist'"),
    ],
)
def test_bad_args_exit_2(cli, tmp_path, task, args, message):
    result = cli("run", "--task", task, "--task-args", args, "--out", tmp_path)
    assert result.returncode == 2 and message in result.stderr
    assert not list(tmp_path.glob(f"{task}-*/metrics.json"))


def test_tabular_table_has_every_method(tmp_path, cli):
    result = cli(
        "run",
        "--task",
        "fact_rfm_tabular",
        "--task-args",
        "datasets=iris,splits=2,iterations=1,mlp_steps=20,mlp_width=8",
        "--out",
        tmp_path,
        "--json",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads(result.stdout)["metrics"]
    for method in ("fact", "agop", "kernel", "mlp"):
        assert 0.0 <= metrics[f"iris/{method}/test_accuracy"] <= 1.0
        assert f"{method}/test_accuracy_stderr" in metrics
    assert metrics["iris/kernel/test_accuracy"] > 0.7  # a Laplace kernel on standardised iris
    assert "| iris |" in next(tmp_path.glob("fact_rfm_tabular-*/table.md")).read_text()


def test_validation_mode_scores_a_part_of_the_training_set_and_never_the_test_set(tmp_path):
    """validation=0.25 of n=200: 150 points trained on, 50 scored as val_*; no test_* metric exists."""
    task = FactRFM(data="parity", n=200, n_test=200, d=10, k=2, kernel="laplace", bandwidth=10.0, iterations=2)
    tuning = FactRFM(
        data="parity",
        n=200,
        n_test=200,
        d=10,
        k=2,
        iterations=2,
        validation=0.25,
        tuned="fact:kernel=laplace,bandwidth=10",
    )
    assert tuning.config == task.config  # tuned= replaced the defaults (gaussian, 1.5) for this update
    split, held = task.split(context(tmp_path / "a", "fact_rfm")), tuning.split(context(tmp_path / "b", "fact_rfm"))
    assert len(held.X_train) == 150 and len(held.X_test) == 50
    assert held.X_test.tolist() == split.X_train[150:].tolist()  # the training part's tail, not the test points
    metrics = tuning.run(context(tmp_path / "c", "fact_rfm"))
    assert tuning.primary_metric == "val_accuracy" and "val_accuracy" in metrics and "best_iteration" in metrics
    assert not [k for k in metrics if "test" in k]


def test_tuned_settings_apply_per_update_and_bad_ones_are_refused():
    tuned = "agop:kernel=laplace,bandwidth=2.5,normalize=false,iterations=7"
    agop, fact = FactRFM(update="agop", tuned=tuned), FactRFM(update="fact", tuned=tuned)
    assert (agop.config.kernel, agop.config.bandwidth, agop.config.normalize, agop.config.iterations) == (
        "laplace",
        2.5,
        False,
        7,
    )
    assert (fact.config.kernel, fact.config.bandwidth, fact.config.iterations) == ("gaussian", 1.5, 50)
    for bad, message in [
        ("agop:width=3", "must be one of kernel"),
        ("agop:bandwidth=wide", "bandwidth=wide is not a float"),
        ("agp:bandwidth=2", "unknown update in tuned 'agp'"),
        ("bandwidth=2", "has no 'update:'"),
    ]:
        with pytest.raises(UsageError, match=message):
            FactRFM(update="agop", tuned=bad)


def test_sweep_summaries_pick_the_validation_best_and_pair_by_seed(tmp_path):
    from harness.plugins.fact.summary import comparison, tuning

    def point(update, bandwidth, best, final, iteration, seed=0):
        args = {"update": update, "bandwidth": bandwidth, "validation": 0.1}
        metrics = {"best_val_accuracy": best, "val_accuracy": final, "best_iteration": iteration}
        return {"args": args, "seed": seed, "metrics": metrics}

    ctx = context(tmp_path, "fact_rfm")
    points = [point("fact", 1.0, 0.5, 0.5, 3), point("fact", 1.5, 0.9, 0.9, 30), point("agop", 1.0, 0.9, 0.8, 5)]
    points.append(point("agop", 2.5, 0.9, 0.9, 12))  # ties agop 1.0 on best, wins on the final value
    metrics = tuning(points, ctx)
    assert metrics["tuned/fact/bandwidth"] == 1.5 and metrics["tuned/fact/iterations"] == 30
    assert metrics["tuned/agop/bandwidth"] == 2.5 and metrics["tuned/agop/configs_at_best"] == 2
    assert "tuned=agop:kernel=gaussian,bandwidth=2.5,ridge=0.001,normalize=True,iterations=12" in (
        ctx.path("tuned.md").read_text()
    )
    runs = [
        {"args": {"update": u}, "seed": s, "metrics": {"test_accuracy": a}}
        for u, values in (("fact", (0.9, 0.8, 1.0)), ("agop", (0.5, 0.6, 0.4)))
        for s, a in enumerate(values)
    ]
    compared = comparison(runs)
    assert compared["fact_minus_agop"] == pytest.approx(0.4) and compared["fact_minus_agop_pairs"] == 3
    assert compared["fact_minus_agop_p"] == pytest.approx(0.25)  # 3 pairs: 2 of the 8 sign flips are as extreme
    assert compared["agop/test_accuracy_ci_low"] < 0.5 < compared["agop/test_accuracy_ci_high"]
