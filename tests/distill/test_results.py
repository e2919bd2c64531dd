"""The distill results page's tables (docs/papers/distill.md) are the committed sweeps' metrics, rounded: the
opposite-leaves family (docs/results/distill/metrics.json), the independent-leaves one
(docs/results/distill/independent/) and the deep trees at four beam widths (docs/results/distill/deep/). A cell is
``mean [95% CI]`` over the record's seeds, the mean alone where every seed gave the same value, or ``k/3`` for a
0/1 metric (target recovered, CART's root right): in how many of the 3 seeds it held."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs/papers/distill.md"
RECORDS = ROOT / "docs/results/distill"
TABLES = {  # marker on the page -> (record, the row's key columns, the table's metric columns after them)
    "**Opposite leaves**": (
        "metrics.json",
        ("d", "r"),
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
        "independent/metrics.json",
        ("d", "r"),
        ("network_test_accuracy", "agreement", "agreement_with_target", "baseline_agreement", "target_recovered"),
    ),
    "**Deep trees**": (
        "deep/metrics.json",
        ("r", "family", "beam"),
        (
            "agreement",
            "agreement_with_target",
            "target_recovered",
            "probes_used",
            "baseline_agreement",
            "target_root_correlation",
            "baseline_root_correct",
        ),
    ),
}
CELL = re.compile(r"(-?[\d.]+)(?: \[(-?[\d.]+), (-?[\d.]+)\])?")
COUNT = re.compile(r"(\d)/3")  # a 0/1 metric over the 3 seeds


def table_rows(marker: str) -> list[list[str]]:
    """The cells of the data rows of the first table after ``marker``."""
    after = PAGE.read_text().split(marker, 1)[1].splitlines()
    start = next(i for i, line in enumerate(after) if line.startswith("|"))
    rows = []
    for line in after[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def point_key(keys: tuple[str, ...], cells: list[str]) -> str:
    """The metric suffix of a row: ``d=20,r=2``, or ``d=100,r=4,beam=10,family=opposite`` for the deep table."""
    given = dict(zip(keys, cells))
    if "beam" in given:
        return f"d=100,r={given['r']},beam={given['beam']},family={given['family']}"
    return ",".join(f"{k}={v}" for k, v in given.items())


@pytest.mark.parametrize("marker", list(TABLES))
def test_page_tables_match_committed_metrics(marker):
    record, keys, columns = TABLES[marker]
    metrics = json.loads((RECORDS / record).read_text())
    rows = table_rows(marker)
    assert len(rows) == (16 if "beam" in keys else 4)
    for cells in rows:
        point = point_key(keys, cells)
        assert len(cells) == len(keys) + len(columns), point
        for column, cell in zip(columns, cells[len(keys) :]):
            name = f"{column}@{point}"
            if COUNT.fullmatch(cell):
                assert abs(int(cell[0]) / 3 - metrics[name]) <= 1e-6, (point, column)
                continue
            match = CELL.fullmatch(cell)
            assert match, (point, column, cell)
            value, low, high = match.groups()
            rounding = 0.5 if column == "probes_used" else 0.0005  # probes: whole numbers
            assert abs(float(value) - metrics[name]) <= rounding + 1e-9, (point, column)
            if low is None and column == "probes_used":  # a count of probes: the mean alone
                continue
            if low is None:  # every seed alike: the interval is the point
                assert abs(metrics[f"{name}_ci_high"] - metrics[f"{name}_ci_low"]) <= 1e-9, (point, column)
            else:
                assert abs(float(low) - metrics[f"{name}_ci_low"]) <= rounding + 1e-9, (point, column)
                assert abs(float(high) - metrics[f"{name}_ci_high"]) <= rounding + 1e-9, (point, column)


def test_the_records_are_the_families_and_sizes_they_claim():
    opposite = yaml.safe_load((RECORDS / "config.yaml").read_text())
    independent = yaml.safe_load((RECORDS / "independent/config.yaml").read_text())
    deep = yaml.safe_load((RECORDS / "deep/config.yaml").read_text())
    assert opposite["task_args"].get("family", "opposite") == "opposite"
    assert independent["task_args"]["family"] == "independent" and "machine" in independent
    assert independent["seeds"] == opposite["seeds"] == deep["seeds"] == [0, 1, 2]
    assert independent["grid"] == opposite["grid"]
    assert deep["grid"] == {"d": [100], "r": [4, 5], "family": ["opposite", "independent"]}
    assert deep["task_args"]["beams"] == "10,50,100,200" and "harness run --task distill_deep" in deep["command"]


def test_the_deep_figure_and_the_cart_sentence():
    """The beam-width figure is committed and shown; the page says what CART's agreement follows, with the
    record's root correlations: 0 in every opposite-leaves target."""
    assert (RECORDS / "deep/agreement_vs_beam_width.png").stat().st_size > 10_000
    page = PAGE.read_text()
    assert "../results/distill/deep/agreement_vs_beam_width.png" in page
    metrics = json.loads((RECORDS / "deep/metrics.json").read_text())
    for r in (4, 5):
        for beam in (10, 50, 100, 200):
            cell = f"d=100,r={r},beam={beam},family=opposite"
            assert metrics[f"target_root_correlation@{cell}"] == 0.0
            assert metrics[f"baseline_root_correct@{cell}"] == 0.0
    assert "What drives CART's number" in page
