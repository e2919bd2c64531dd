"""The README's graph_cot table is read from the committed run record: a code change that moves a number fails here
until docs/results/graph_cot/ is regenerated."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_table_matches_the_committed_metrics():
    metrics = json.loads((ROOT / "docs/results/graph_cot/flagship/metrics.json").read_text())
    readme = (ROOT / "README.md").read_text()
    for strategy in ("dfs", "path"):
        row = re.search(rf"^\| {strategy} \| (.*) \|$", readme, re.M).group(1).split(" | ")
        p = f"{strategy}/"
        vote = f"{p}decision_accuracy@B=12,N=16"
        expected = [
            f"{metrics[p + 'evidence_accuracy']:.2f} ± {metrics[p + 'evidence_accuracy_stderr']:.2f}",
            f"{metrics[p + 'evidence_accuracy@B=12,N=16']:.2f}",
            f"{metrics[p + 'decision_accuracy']:.2f} ± {metrics[p + 'decision_accuracy_stderr']:.2f}",
            f"{metrics[vote]:.2f} ± {metrics[vote + '_stderr']:.2f}",
            f"{metrics[p + 'cot_tokens@B=12']:.1f}",
        ]
        assert row == expected, strategy
