"""End to end through the CLI: a tiny experiment (train + B x N grid + plots + resume), a trained
checkpoint and a
baseline served through LLM mode, and bad task args."""

import json

from cli_helpers import run_harness


def metrics_of(out, stdout):
    run_dir = stdout.strip().splitlines()[-1].split(": ", 1)[1]
    return json.loads((out / run_dir.rsplit("/", 1)[1] / "metrics.json").read_text()), run_dir


def test_tiny_experiment_then_checkpoint_and_resume(tmp_path):
    out = tmp_path / "runs"
    args = [
        "run",
        "--task",
        "graph_cot",
        "--model",
        "scratch",
        "--task-args",
        "depth=1,cot=dfs,steps=15,examples=6,samples=4,budgets=4,12",
        "--out",
        out,
        "--no-cache",
    ]
    first = run_harness(*args, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    metrics, run_dir = metrics_of(out, first.stdout)
    for name in (
        "evidence_accuracy",
        "decision_accuracy",
        "evidence_accuracy@B=12,N=4",
        "decision_accuracy@B=4,N=2",
        "evidence_accuracy@B=4,N=1_stderr",
        "cot_length",
        "baseline/random-path/evidence_accuracy",
        "cot_tokens@B=4",
    ):
        assert name in metrics, name
    assert metrics["cot_tokens@B=4"] <= 4 and metrics["cot_tokens@B=4"] <= metrics["cot_tokens@B=12"]
    assert all(0.0 <= metrics[k] <= 1.0 for k in metrics if "accuracy" in k)
    for png in ("heatmap_dfs.png", "parallel_scaling.png", "sequential_scaling.png", "compute_matched.png"):
        assert (out / run_dir.rsplit("/", 1)[1] / png).stat().st_size > 1000
    assert "graph_cot, Bridge(1)" in first.stdout and "dfs: one chain" in first.stdout  # the short summary

    again = run_harness(*args, timeout=300)  # finished checkpoint and evaluation are reused, same numbers
    assert again.returncode == 0 and "resuming run" in again.stderr and "train dfs" not in again.stderr
    assert metrics_of(out, again.stdout)[0] == metrics

    served = run_harness(
        "run",
        "--task",
        "graph_cot",
        "--model",
        f"scratch:{run_dir}/dfs",
        "--task-args",
        "depth=1,examples=4,samples=2",
        "--out",
        out,
        "--no-cache",
        "--json",
        timeout=300,
    )
    assert served.returncode == 0, served.stderr[-2000:]
    assert "evidence_accuracy@B=26,N=2" in json.loads(served.stdout)["metrics"]


def test_baseline_through_llm_mode_and_bad_args(tmp_path):
    out = tmp_path / "runs"
    done = run_harness(
        "run",
        "--task",
        "graph_cot",
        "--model",
        "baseline:random-path",
        "--task-args",
        "depth=1,examples=300,samples=4",
        "--out",
        out,
        "--no-cache",
        "--json",
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads(done.stdout)["metrics"]
    assert abs(metrics["evidence_accuracy"] - 2 / 3) < 4 * metrics["evidence_accuracy_stderr"]
    bad = run_harness("run", "--task", "graph_cot", "--task-args", "cot=bfs", "--out", out)
    assert bad.returncode == 2 and "unknown CoT strategy" in bad.stderr
    bad = run_harness("run", "--task", "graph_cot", "--task-args", "depht=2", "--out", out)
    assert bad.returncode == 2 and "depth" in bad.stderr


def test_same_command_and_seed_give_the_same_metrics(tmp_path):
    """Determinism end to end: two runs of the same tiny experiment in separate folders (so nothing is reused) give
    identical metrics; another seed gives others."""
    args = [
        "run",
        "--task",
        "graph_cot",
        "--model",
        "scratch",
        "--no-cache",
        "--json",
        "--task-args",
        "depth=1,cot=dfs,steps=10,examples=8,samples=4,budgets=4,12",
    ]
    results = []
    for out, seed in ((tmp_path / "a", 0), (tmp_path / "b", 0), (tmp_path / "c", 1)):
        done = run_harness(*args, "--out", out, "--seed", seed, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        results.append(json.loads(done.stdout)["metrics"])
    assert results[0] == results[1]
    assert results[0] != results[2]


def experiment(out, task_args: str):
    """A finished tiny experiment: (process, metrics, run folder)."""
    done = run_harness("run", "--task", "graph_cot", "--task-args", task_args, "--out", out, "--no-cache", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return (done, *metrics_of(out, done.stdout))


def test_models_trained_to_depth_2_are_evaluated_at_every_depth(tmp_path):
    """``eval_depths``: one curriculum model per strategy, scored at each depth, with the other strategy's votes at
    the first one's token cost, the closed forms per depth, and the plots against depth."""
    out = tmp_path / "runs"
    done, metrics, run_dir = experiment(
        out, "depth=2,eval_depths=1,curriculum=true,cot=dfs,path,steps=10,examples=6,samples=4,workers=1"
    )
    for depth in (1, 2):
        assert f"dfs/d{depth}/evidence_accuracy@B=4,N=1" in metrics
        assert 1 <= metrics[f"path/d{depth}/matched_n"] <= 4
        assert 0 <= metrics[f"path/d{depth}/decision_accuracy@matched"] <= 1
    assert metrics["baseline/random-path/d2/evidence_accuracy"] == 1 / 3
    assert metrics["baseline/random-path/d1/decision_accuracy"] == (1 + 2 / 3) / 2
    assert metrics["evidence_accuracy"] == metrics["dfs/d2/evidence_accuracy"]  # the headline: training depth
    assert "dfs/train_loss" in metrics and "against depth" in done.stdout
    for png in ("evidence_vs_depth.png", "decision_vs_depth.png"):
        assert (out / run_dir.rsplit("/", 1)[1] / png).stat().st_size > 1000
    bad = run_harness("run", "--task", "graph_cot", "--task-args", "depth=2,eval_depths=3", "--out", out)
    assert bad.returncode == 2 and "training depth 2" in bad.stderr


def test_every_strategy_trains_and_gets_its_heatmap(tmp_path):
    """The strategies graph_cot_strategies trains besides dfs and path: each model trains, is scored over B x N and
    gets its heatmap (a few steps: this checks the plumbing, the preset the accuracy)."""
    out = tmp_path / "runs"
    done, metrics, run_dir = experiment(out, "depth=1,cot=optimal,dfs-bt,walk-6,steps=5,examples=4,samples=2,workers=1")
    for strategy in ("optimal", "dfs-bt", "walk-6"):
        assert 0 <= metrics[f"{strategy}/evidence_accuracy@B=24,N=2"] <= 1  # dfs-bt's longest chain sets B=24
        assert (out / run_dir.rsplit("/", 1)[1] / f"heatmap_{strategy}.png").stat().st_size > 1000


def test_damaged_evaluation_is_recomputed_and_the_run_reads_well(tmp_path):
    """Issue 30: the run folder is named (at the start on a terminal: tests/test_cli.py), each progress bar by the
    strategy it trains, the
    final table is the headline (the grid stays in metrics.json), and a truncated evaluation record is set aside
    with one warning and evaluated again, to the same numbers, instead of failing every retry."""
    out = tmp_path / "runs"
    args = ["run", "--task", "graph_cot", "--task-args", "cot=dfs,path,steps=5,examples=4,samples=2,workers=1"]
    first = run_harness(*args, "--out", out, "--no-cache", timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    metrics, run_dir = metrics_of(out, first.stdout)
    assert first.stdout.rstrip().endswith(f"run {run_dir.rsplit('/', 1)[1]}: {run_dir}")
    assert "train dfs:" in first.stderr and "train path:" in first.stderr and "train:" not in first.stderr
    table = first.stdout.split("metric ", 1)[1].split("\n\nrun ", 1)[0].splitlines()
    assert len(table) <= 14 and "more in metrics.json" in table[-1] and "@B=" not in "\n".join(table)
    assert "dfs/evidence_accuracy " in "\n".join(table)  # each strategy's headline, its grid in metrics.json
    assert len(metrics) > 40

    record = out / run_dir.rsplit("/", 1)[1] / "dfs" / "evaluation-d1.json"
    record.write_text(record.read_text()[:79])  # cut short mid-string, as a full disk leaves it
    again = run_harness(*args, "--out", out, "--no-cache", "--all", timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    warnings = [line for line in again.stderr.splitlines() if line.startswith("harness: warning")]
    assert len(warnings) == 1 and str(record) in warnings[0] and "recomputing" in warnings[0]
    assert metrics_of(out, again.stdout)[0] == metrics and record.with_name("evaluation-d1.json.damaged").exists()
    assert "dfs/evidence_accuracy@B=4,N=2" in again.stdout  # --all: the whole list
