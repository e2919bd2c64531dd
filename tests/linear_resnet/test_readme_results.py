"""The linear_resnet results page's table (docs/papers/linear_resnet.md) quotes
docs/results/linear_resnet/metrics.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def table_rows(section: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| lambda")
    ]


def test_readme_table_matches_committed_metrics():
    match = re.search(r"# linear_resnet:.*", (ROOT / "docs/papers/linear_resnet.md").read_text(), re.S)
    assert match, "docs/papers/linear_resnet.md has no linear_resnet section"
    metrics = json.loads((ROOT / "docs/results/linear_resnet/metrics.json").read_text())
    linear = match.group(0).split("## Nonlinear:")[0]  # the ReLU section has its own table (test_relu_results.py)
    rows = [r for r in table_rows(linear) if re.fullmatch(r"[\d.]+", r[0])]
    assert len(rows) == 6
    for lam, rank, nuclear, shrinkage, error in rows:
        key = f"@lam={float(lam)},depth=8"
        for cell, name in ((rank, "effective_rank"), (nuclear, "nuclear_norm"), (shrinkage, "shrinkage")):
            trained, closed = re.fullmatch(r"([\d.]+) \(([\d.]+)\)", cell).groups()
            digits = len(trained.split(".")[1]) if "." in trained else 0
            assert float(trained) == pytest.approx(metrics[name + key], abs=0.6 * 10**-digits)
            assert float(closed) == pytest.approx(metrics[f"resnet_{name}" + key], abs=0.6 * 10**-digits)
        assert float(error) == pytest.approx(metrics["error" + key], abs=6e-4)
