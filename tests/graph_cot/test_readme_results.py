"""The graph_cot results page's tables (docs/papers/graph_cot.md) are read from the committed run records: a code
change that moves a number fails here until docs/results/graph_cot/ is regenerated
(python docs/results/regenerate.py graph_cot)."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs/papers/graph_cot.md").read_text()
PROSE = " ".join(PAGE.split())  # the page's text without its line breaks, for sentences that wrap


def record(name: str) -> dict:
    return json.loads((ROOT / f"docs/results/graph_cot/{name}/metrics.json").read_text())


def with_stderr(metrics: dict, key: str) -> str:
    return f"{metrics[key]:.2f} ± {metrics[key + '_stderr']:.2f}"


def readme_row(first_cell: str) -> list[str]:
    return re.search(rf"^\| {re.escape(first_cell)} \| (.*) \|$", PAGE, re.M).group(1).split(" | ")


@pytest.mark.parametrize(
    "name,strategies,full,label",
    [
        ("flagship", ("dfs", "path"), 12, "{}"),
        ("strategies", ("optimal", "path", "dfs", "dfs-bt", "walk-10"), 24, "all five: {}"),
    ],
)
def test_strategy_tables_match_the_committed_metrics(name, strategies, full, label):
    metrics = record(name)
    for strategy in strategies:
        p = f"{strategy}/"
        expected = [
            with_stderr(metrics, p + "evidence_accuracy"),
            f"{metrics[f'{p}evidence_accuracy@B={full},N=16']:.2f}",
            with_stderr(metrics, p + "decision_accuracy"),
            with_stderr(metrics, f"{p}decision_accuracy@B={full},N=16"),
            f"{metrics[f'{p}cot_tokens@B={full}']:.1f}",
        ]
        assert readme_row(label.format(strategy)) == expected, strategy


@pytest.mark.parametrize("name,label", [("depth", "Bridge({d})"), ("gpu_depth", "Bridge({d}), GPU")])
def test_depth_tables_match_the_committed_metrics(name, label):
    metrics = record(name)
    for depth, full in ((1, 12), (2, 24), (3, 32)):
        dfs, path = f"dfs/d{depth}/", f"path/d{depth}/"
        chance = metrics[f"baseline/random-path/d{depth}/evidence_accuracy"]
        expected = [
            with_stderr(metrics, f"{dfs}evidence_accuracy@B={full},N=1"),
            with_stderr(metrics, f"{dfs}decision_accuracy@B={full},N=1"),
            f"{metrics[f'{dfs}cot_tokens@B={full}']:.1f}",
            with_stderr(metrics, f"{path}evidence_accuracy@B={full},N=1"),
            str(metrics[f"{path}matched_n"]),
            with_stderr(metrics, f"{path}evidence_accuracy@matched"),
            with_stderr(metrics, f"{path}decision_accuracy@matched"),
            f"{metrics[f'{path}evidence_accuracy@B={full},N=16']:.2f}",
            f"{chance:.3f} / {(1 + chance) / 2:.3f}",
        ]
        assert readme_row(label.format(d=depth)) == expected, depth


def test_depth_search_table_matches_its_runs():
    """The results page's table of the depth-3 search is what summarize.py makes of the committed runs."""
    assert_table_on_page(summarize_script(ROOT / "docs/results/graph_cot/gpu_d3_search").table())


def test_escape_study_table_matches_its_record():
    """The escape study's table is what escape.summary_table makes of the committed trainings, and the fix the
    flagship preset uses ended the plateau earlier at every seed tried with both."""
    from harness.plugins.graph_cot.escape import summary_table

    from harness.store import read_jsonl

    records = read_jsonl(ROOT / "docs/results/graph_cot/escape/escape.jsonl")
    for line in summary_table(records):
        assert line in PAGE.splitlines(), line
    steps = {(r["config"], r["seed"]): r["escape_step"] or r["steps"] for r in records}
    fixed = [seed for config, seed in steps if config == "walk500"]
    assert fixed and all(steps["walk500", s] < steps["flagship", s] for s in fixed)
    preset = (ROOT / "tasks/graph_cot.yaml").read_text()
    assert "walk_warmup: 500" in preset


def test_flagship_seeds_table_matches_its_sweep_record():
    """The seeds table is what seeds.seed_table makes of the committed sweep's points, and the sentence that counts
    the seeds where the contrast holds is the sweep's own count."""
    from harness.plugins.graph_cot.seeds import seed_table

    from harness.store import read_jsonl

    folder = ROOT / "docs/results/graph_cot/flagship_seeds"
    points = read_jsonl(folder / "samples.jsonl")
    assert len(points) >= 10 and all(p["status"] == "finished" for p in points)
    for line in seed_table(points):
        assert line in PAGE.splitlines(), line
    summary = json.loads((folder / "metrics.json").read_text())
    assert f"at {summary['seeds/contrast_holds']:.0f} of {summary['seeds']:.0f} seeds" in PAGE


def summarize_script(folder: Path):
    """A record's summarize.py (it reads the record's runs and makes the page's table), loaded as a module."""
    spec = importlib.util.spec_from_file_location(f"{folder.name}_summarize", folder / "summarize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_table_on_page(lines: list[str]) -> None:
    assert len(lines) > 2
    for line in lines:
        assert line in PAGE.splitlines(), line


def test_reference_architecture_table_matches_its_sweep_record():
    """The paper's architecture at the flagship's budget (issue 25, item 5, CPU part): the page's table is what
    seeds.seed_table makes of the committed sweep, at the flagship seeds table's first three seeds, and the page's
    reading (neither model learns at any seed; the default does at the same seeds) holds in both records."""
    from harness.plugins.graph_cot.seeds import seed_table

    from harness.store import read_jsonl

    folder = ROOT / "docs/results/graph_cot/reference_seeds"
    points = read_jsonl(folder / "samples.jsonl")
    assert len(points) == 3 and all(p["status"] == "finished" for p in points)
    assert "attention=sdpa" in yaml_command(folder) and "positions=rotary" in yaml_command(folder)
    for line in seed_table(points):
        assert line in PAGE.splitlines(), line
    default = {
        p["seed"]: p["metrics"] for p in read_jsonl(ROOT / "docs/results/graph_cot/flagship_seeds/samples.jsonl")
    }
    for p in points:
        assert p["metrics"]["dfs/evidence_accuracy"] < 0.1 and p["metrics"]["path/evidence_accuracy"] < 0.1
        assert default[p["seed"]]["dfs/evidence_accuracy"] > 0.8


def yaml_command(folder: Path) -> str:
    import yaml

    return yaml.safe_load((folder / "config.yaml").read_text())["command"]


def test_depth_on_a_cpu_tables_match_their_records():
    """Depth 3 on a CPU (issue 25, item 3): the page's two tables are what the depth_cpu record's summarize.py and
    escape.summary_table make of the committed runs, and the reason the page gives holds in them: the only run that
    learned depth 3 (dfs evidence >= 0.8) trained more steps after its plateau than a 30-minute CPU budget holds in
    all, and the CPU trainings with the walk warm-up were at depth 3 under the budget's schedule."""
    from harness.plugins.graph_cot.escape import CONFIGS, summary_table

    from harness.store import read_jsonl

    folder = ROOT / "docs/results/graph_cot/depth_cpu"
    summarize = summarize_script(folder)
    assert_table_on_page(summarize.table())
    learned = [r for r in summarize.search_runs() if r["d3"] >= 0.8]
    assert learned and all(r["after"] > summarize.BUDGET_STEPS for r in learned)
    assert f"{summarize.BUDGET_STEPS} steps" in PAGE

    records = read_jsonl(folder / "escape.jsonl")
    assert len(records) >= 3 and {r["config"] for r in records} == {"depth_walk500"}
    assert CONFIGS["depth_walk500"]["depth"] == 3 and all(r["schedule"] == 4000 for r in records)
    for line in summary_table(records):
        assert line in PAGE.splitlines(), line
    final = [f"{r['losses'][-1][1]:.2f}" for r in records]
    final = ", ".join(final[:-1]) + f" and {final[-1]}"
    assert all(r["escape_step"] is None and r["steps"] == 2500 for r in records)
    assert f"left the plateau by step 2500 (loss {final} there" in PAGE


def test_reference_escape_table_matches_its_record():
    """The reference model tuned on a CPU (issue 25, item 5): the page's table is what escape.summary_table makes of
    the committed trainings, run at tuning seeds other than the seeds table's, and the page's reading holds in them:
    the longer walk warm-up escaped at the most seeds, at the steps the page names."""
    from harness.plugins.graph_cot.escape import summary_table

    from harness.store import read_jsonl

    records = read_jsonl(ROOT / "docs/results/graph_cot/reference_escape/escape.jsonl")
    assert {r["seed"] for r in records} == {0, 1, 2} and all(r["schedule"] == 8000 for r in records)
    for line in summary_table(records):
        assert line in PAGE.splitlines(), line
    escaped: dict[str, list[int]] = {}
    for r in records:
        escaped.setdefault(r["config"], []).extend([r["escape_step"]] if r["escape_step"] else [])
    assert max(escaped, key=lambda c: len(escaped[c])) == "reference_walk2000"
    best, default = sorted(escaped["reference_walk2000"]), escaped["reference"]
    assert f"2000 steps on walks ended the plateau at {len(best)} of 3 seeds (steps {best[0]} and {best[1]})" in PROSE
    assert f"against {len(default)} of 3 (step {default[0]}) with the flagship's 500" in PROSE


def test_tuned_reference_table_matches_its_sweep_record():
    """The reference model at its tuned setting (2000 walk steps, 8000 steps) at the seeds table's seeds 10-12: the
    page's table is what seeds.seed_table makes of the committed sweep, and the page's reading is the record's:
    no dfs model leaves its plateau, the one path model that does is named with its step and evidence."""
    from harness.plugins.graph_cot.seeds import seed_table

    from harness.store import read_jsonl

    folder = ROOT / "docs/results/graph_cot/reference_tuned_seeds"
    points = read_jsonl(folder / "samples.jsonl")
    assert sorted(p["seed"] for p in points) == [10, 11, 12] and all(p["status"] == "finished" for p in points)
    command = yaml_command(folder)
    assert all(arg in command for arg in ("attention=sdpa", "positions=rotary", "steps=8000", "walk_warmup=2000"))
    for line in seed_table(points):
        assert line in PAGE.splitlines(), line

    def first_step_below_1(seed: int, strategy: str) -> int | None:
        rows = read_jsonl(folder / f"seed{seed}/metrics.jsonl")
        return next((r["step"] for r in rows if r.get(f"{strategy}/train_loss", 9.0) < 1.0), None)

    assert all(first_step_below_1(p["seed"], "dfs") is None for p in points)
    escaped = [(p, first_step_below_1(p["seed"], "path")) for p in points]
    [(point, step)] = [(p, step) for p, step in escaped if step is not None]
    m = point["metrics"]
    losses = sorted(p["metrics"]["dfs/train_loss"] for p in points)
    assert f"(final training loss {losses[0]:.2f}-{losses[-1]:.2f})" in PROSE
    assert (
        f"seed {point['seed']}, at step {step}, but had not learned its chains by step 8000 (evidence"
        f" {m['path/evidence_accuracy']:.2f}, its closed form {m['baseline/random-path/evidence_accuracy']:.2f})"
    ) in PROSE


def test_reference_at_the_papers_size_is_quoted_from_its_record():
    """The page's sentence on the 128 x 4 reference quotes its trainings' cap and final losses."""
    from harness.store import read_jsonl

    records = read_jsonl(ROOT / "docs/results/graph_cot/reference_escape/escape.jsonl")
    big = [r for r in records if r["config"] == "reference_d128x4"]
    assert len(big) == 2 and all(r["escape_step"] is None for r in big)
    [cap] = {r["steps"] for r in big}
    final = " and ".join(f"{r['losses'][-1][1]:.2f}" for r in sorted(big, key=lambda r: r["seed"]))
    assert f"each capped at {cap} steps" in PROSE and f"(loss {final} at the cap;" in PROSE
