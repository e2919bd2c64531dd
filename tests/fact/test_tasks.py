"""The fact tasks end to end: fact_mlp reaches a stationary point where the FACT holds, fact_rfm writes its series and
plots, and bad arguments exit with status 2."""

from __future__ import annotations

import json

import pytest
from harness.plugins.fact.mlp import FactMLP
from harness.plugins.fact.task import FactRFM

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
