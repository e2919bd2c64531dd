"""The leaderboard: one column per task family, variant and headline metric, whatever kind of model made the run."""

from harness.report import leaderboard, variant_of
from harness.store import Index, Run


def record(out, task, family, variant, model, metrics, primary, limit=None):
    config = {"task": task, "task_family": family, "variant": variant, "model": model, "limit": limit}
    run = Run.open(out, config, {**config, "metrics": metrics})
    run.finish(metrics, primary)
    run.close()


def test_trained_models_baselines_and_llms_share_a_column(tmp_path):
    from harness.plugins.graph_cot.task import GraphCoT

    # graph_cot_d2 (an experiment: two trained models and closed-form baselines in one run) and graph_cot_llm
    # (depth 2 too) are different presets of one task: the variant, not the preset name, picks the column
    assert variant_of(GraphCoT(depth=2), {"depth": 2}) == variant_of(GraphCoT(), {"depth": 2}) == "depth=2"
    assert variant_of(GraphCoT(), {}) == "depth=1"  # the default counts, so graph_cot and graph_cot_d1 agree
    record(
        tmp_path,
        "graph_cot_d2",
        "graph_cot",
        "depth=2",
        "scratch",
        {
            "dfs/evidence_accuracy": 0.92,
            "dfs/evidence_accuracy_stderr": 0.03,
            "path/evidence_accuracy": 0.38,
            "evidence_accuracy": 0.92,
            "dfs/evidence_accuracy@B=8,N=1": 0.13,
            "baseline/random-path/evidence_accuracy": 1 / 3,
        },
        "evidence_accuracy",
    )
    record(
        tmp_path,
        "graph_cot_llm",
        "graph_cot",
        "depth=2",
        "hf:smollm2",
        {"evidence_accuracy": 0.05, "evidence_accuracy_stderr": 0.02},
        "evidence_accuracy",
        limit=20,
    )
    record(
        tmp_path,
        "graph_cot_llm",
        "graph_cot",
        "depth=2",
        "baseline:random-path",
        {"evidence_accuracy": 0.31},
        "evidence_accuracy",
    )
    rows, columns = leaderboard(Index(tmp_path).runs("finished"))
    assert columns == ["model", "graph_cot[depth=2]/evidence_accuracy"]
    cells = {r["model"]: r[columns[1]] for r in rows}
    # the sampled baseline run was the latest, so it replaces the closed form in the baseline's row
    assert cells == {"scratch/dfs": 0.92, "scratch/path": 0.38, "baseline:random-path": 0.31, "hf:smollm2": 0.05}
    text, _ = leaderboard(Index(tmp_path).runs("finished"), with_stderr=True)
    assert {r["model"]: r[columns[1]] for r in text}["hf:smollm2"] == "0.05 ± 0.02*"
    assert "hf:smollm2" not in {r["model"] for r in leaderboard(Index(tmp_path).runs("finished"), False)[0]}


def test_a_full_run_beats_a_later_limited_one(tmp_path):
    record(tmp_path, "qa", "dataset", "qa", "m", {"acc": 0.7}, "acc")
    record(tmp_path, "qa", "dataset", "qa", "m", {"acc": 0.9}, "acc", limit=5)
    rows, columns = leaderboard(Index(tmp_path).runs("finished"))
    assert columns == ["model", "dataset[qa]/acc"] and rows == [{"model": "m", "dataset[qa]/acc": 0.7}]
