"""The distill results page's tables (docs/papers/distill.md) are the committed sweeps' metrics, rounded: the
opposite-leaves family (docs/results/distill/metrics.json) and the independent-leaves one
(docs/results/distill/independent/metrics.json)."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs/papers/distill.md"
TABLES = {  # marker on the page -> (record, the table's metric columns after d and r)
    "**Opposite leaves**": (
        "docs/results/distill/metrics.json",
        (
            "network_test_accuracy",
            "agreement",
            "agreement_with_target",
            "baseline_agreement",
            "probes_used",
            "tree_depth",
        ),
    ),
    "**Independent leaves**": (
        "docs/results/distill/independent/metrics.json",
        ("network_test_accuracy", "agreement", "agreement_with_target", "baseline_agreement", "target_recovered"),
    ),
}


def table_rows(marker: str) -> list[list[str]]:
    """The cells of the first table after ``marker``."""
    after = PAGE.read_text().split(marker, 1)[1].splitlines()
    start = next(i for i, line in enumerate(after) if line.startswith("|"))
    rows = []
    for line in after[start:]:
        if not line.startswith("|"):
            break
        if re.match(r"\| \d+ \| \d+ \|", line):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


@pytest.mark.parametrize("marker", list(TABLES))
def test_readme_tables_match_committed_metrics(marker):
    record, columns = TABLES[marker]
    metrics = json.loads((ROOT / record).read_text())
    rows = table_rows(marker)
    assert len(rows) == 4
    for cells in rows:
        point = f"d={cells[0]},r={cells[1]}"
        assert len(cells) == 2 + len(columns)
        for column, cell in zip(columns, cells[2:]):
            value, _, stderr = cell.partition(" ± ")
            assert abs(float(value) - metrics[f"{column}@{point}"]) <= 0.0005 + 1e-9, (point, column)
            if stderr:
                assert abs(float(stderr) - metrics[f"{column}@{point}_stderr"]) <= 0.0005 + 1e-9, (point, column)


def test_the_records_are_the_families_they_claim():
    import yaml

    opposite = yaml.safe_load((ROOT / "docs/results/distill/config.yaml").read_text())
    independent = yaml.safe_load((ROOT / "docs/results/distill/independent/config.yaml").read_text())
    assert opposite["task_args"].get("leaves", "opposite") == "opposite"
    assert independent["task_args"]["leaves"] == "independent" and "machine" in independent
    assert independent["seeds"] == opposite["seeds"] == [0, 1, 2] and independent["grid"] == opposite["grid"]
