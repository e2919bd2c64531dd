"""The distill results page's table (docs/papers/distill.md) is the committed sweep's metrics
(docs/results/distill/metrics.json), rounded."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = (
    "network_test_accuracy",
    "agreement",
    "agreement_with_target",
    "baseline_agreement",
    "probes_used",
    "tree_depth",
)


def test_readme_table_matches_committed_metrics():
    metrics = json.loads((ROOT / "docs/results/distill/metrics.json").read_text())
    section = (ROOT / "docs/papers/distill.md").read_text().split("# distill:", 1)[1]
    rows = [line for line in section.splitlines() if re.match(r"\| \d+ \| \d+ \|", line)]
    assert len(rows) == 4
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        point = f"d={cells[0]},r={cells[1]}"
        for column, cell in zip(COLUMNS, cells[2:]):
            value, _, stderr = cell.partition(" ± ")
            assert abs(float(value) - metrics[f"{column}@{point}"]) <= 0.0005 + 1e-9, (point, column)
            if stderr:
                assert abs(float(stderr) - metrics[f"{column}@{point}_stderr"]) <= 0.0005 + 1e-9, (point, column)
