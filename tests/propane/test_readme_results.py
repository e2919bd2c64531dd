"""The propane results page's suite table (docs/papers/propane.md) is read from the committed run record: a code
change that moves a number fails here until docs/results/propane/suite/ is regenerated."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORD = ROOT / "docs/results/propane/suite"


def row(readme: str, label: str) -> list[str]:
    return re.search(rf"^\| {re.escape(label)} \| (.*) \|$", readme, re.M).group(1).split(" | ")


def test_readme_suite_table_matches_the_committed_metrics():
    m = json.loads((RECORD / "metrics.json").read_text())
    readme = (ROOT / "docs/papers/propane.md").read_text()
    pm = "\u00b1"
    for label, method in (("PROPANE", "propane"), ("random search", "random")):
        assert row(readme, label) == [
            f"{m['kl_initial']:.2f} {pm} {m['kl_initial_stderr']:.2f}",
            f"{m[f'kl_best_{method}']:.2f} {pm} {m[f'kl_best_{method}_stderr']:.2f}",
            f"{m[f'kl_reduction_{method}']:.2f} {pm} {m[f'kl_reduction_{method}_stderr']:.2f}",
        ], label
    assert row(readme, "PROPANE \u2212 random, paired by prompt") == [
        f"{m['paired_kl_diff']:.2f} {pm} {m['paired_kl_diff_stderr']:.2f}",
        f"{int(m['propane_wins'])} / {int(m['propane_losses'])} / {int(m['ties'])}",
        f"{m['sign_test_p']:.3f}",
    ]
    assert f"over {int(m['prompts'])} target prompts" in readme


def test_the_record_is_the_presets_run():
    config = (RECORD / "config.yaml").read_text()
    assert "task: propane_suite" in config and "model: hf:smollm2" in config
    samples = [json.loads(line) for line in (RECORD / "samples.jsonl").read_text().splitlines()]
    metrics = json.loads((RECORD / "metrics.json").read_text())
    assert len(samples) == 2 * metrics["prompts"]
    assert (RECORD / "paired_kl.png").stat().st_size > 5000


def test_readme_thirty_step_search_matches_its_record():
    """The performance page (docs/performance.md) quotes the 30-step search's record."""
    record = ROOT / "docs/results/propane/smollm2_30_steps"
    m = json.loads((record / "metrics.json").read_text())
    readme = (ROOT / "docs/performance.md").read_text()
    after = f"{m['kl_heldout_best']:.2f} \u00b1 {m['kl_heldout_best_stderr']:.2f}"
    assert f"held-out KL {m['kl_heldout_initial']:.2f} to {after}" in readme
    assert int(m["steps"]) == 30 and "steps=30" in (record / "config.yaml").read_text()
    minutes, seconds = re.search(r"Elapsed .*: (\d+):(\d+)\.", (record / "time.txt").read_text()).groups()
    assert f"{int(minutes)} min {int(seconds)} s wall" in readme
