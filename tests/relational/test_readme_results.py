"""The relational results page's tables (docs/papers/relational.md) quote the committed records in
docs/results/relational/."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs/results/relational"


def section() -> str:
    match = re.search(r"# relational:.*", (ROOT / "docs/papers/relational.md").read_text(), re.S)
    assert match, "docs/papers/relational.md has no relational section"
    return match.group(0)


def rows(first_cell: str) -> list[list[str]]:
    """Table rows whose first cell matches ``first_cell`` (a regex)."""
    lines = [line for line in section().splitlines() if line.startswith("| ")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return [row for row in cells if re.fullmatch(first_cell, row[0])]


def metrics(name: str) -> dict:
    return json.loads((RESULTS / name / "metrics.json").read_text())


def n_value(cell: str) -> float:
    return math.inf if cell.startswith(">") else float(cell)


def check_mean_stderr(cell: str, mean: float, stderr: float | None) -> None:
    numbers = [float(x) for x in re.findall(r"-?[\d.]+", cell)]
    assert numbers[0] == pytest.approx(mean, abs=0.006), cell
    if stderr is not None and len(numbers) > 1:
        assert numbers[1] == pytest.approx(stderr, abs=0.006), cell


def test_templates_table():
    m = metrics("templates")
    table = rows(r"sdpa|identity|mlp")[:3]
    assert [r[0] for r in table] == ["sdpa", "identity", "mlp"]
    for model, *accuracies, needed in table:
        for n, cell in zip((16, 64, 256, 1024, 2048), accuracies):
            key = f"test_accuracy@n={n},attention={model}"
            check_mean_stderr(cell, m[key], m.get(f"{key}_stderr"))
        assert n_value(needed) == m[f"n_to_0.9@attention={model}"]


def test_inverse_scaling_table():
    m = metrics("inverse_scaling")
    table = rows(r"sdpa|identity")[2:4]
    assert [r[0] for r in table] == ["sdpa", "identity"]
    for attention, *cells in table:
        for d, cell in zip((32, 64, 128), cells):
            needed, error = re.fullmatch(r"(>?\s?\d+) \(([\d.]+)\)", cell).groups()
            assert n_value(needed.replace(" ", "")) == m[f"n_to_error_0.05@attention={attention},d_model={d}"]
            assert float(error) == pytest.approx(m[f"test_error@d_model={d},n=2048,attention={attention}"], abs=6e-4)


def test_llm_table():
    table = rows(r"hf:.*")
    assert [r[0] for r in table] == ["hf:smollm2", "hf:gemma3-270m"]
    for model, accuracy, margin in table:
        m = metrics(f"llm_{model.split(':')[1]}")
        check_mean_stderr(accuracy, m["accuracy"], m["accuracy_stderr"])
        check_mean_stderr(margin, m["margin"], m["margin_stderr"])
