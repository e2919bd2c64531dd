"""The moe results page's table (docs/papers/moe.md) is the committed sweep's metrics
(docs/results/moe/metrics.json), rounded."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs/papers/moe.md").read_text().split("# moe:", 1)[1]


def record(name: str) -> dict:
    """The metrics.json of the moe record ``name`` ("" for the top-level one)."""
    return json.loads((ROOT / "docs/results/moe" / name / "metrics.json").read_text())


def page_rows(pattern: str) -> list[str]:
    """The page's table rows that start with ``pattern`` (a regular expression)."""
    return [line for line in PAGE.splitlines() if re.match(pattern, line)]


def test_readme_table_matches_committed_metrics():
    metrics = record("")
    rows = page_rows(r"\| \d+( \(teacher\))? \|")
    assert len(rows) == 5
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        k = cells[0].split()[0]
        for experts, cell in zip((16, 32, 64), cells[1:4]):
            assert_interval(cell, metrics, f"normalized_mse@k={k},experts={experts}")
        assert abs(float(cells[4]) - metrics[f"best_normalized_mse@k={k}"]) <= cited(cells[4])
        if "teacher" not in cells[5]:
            assert_interval(cells[5], metrics, f"excess_over_teacher_k@k={k}")


def test_readme_frozen_numbers_match_committed_metrics():
    metrics = record("frozen")
    for part, text in (
        ("gate", "with the gate frozen"),
        ("experts", "with the experts frozen"),
        ("nothing", "when both are learnt"),
    ):
        cell = re.search(r"(\S+\s\[\S+,\s\S+\])\s" + text.replace(" ", r"\s+"), PAGE).group(1)
        assert_interval(cell, metrics, f"normalized_mse@freeze={part}")


def cited(text: str) -> float:
    """Half a unit in the last written decimal: how far a rounded number may be from its record."""
    return 0.5 * 10 ** -len(text.split(".")[1]) + 1e-12 if "." in text else 0.5


def interval(cell: str) -> tuple[str, str, str]:
    """'0.123 [0.100, 0.150]' -> its three numbers as written."""
    return re.fullmatch(r"([-+]?[\d.]+)\s\[(-?[\d.]+),\s(-?[\d.]+)\]", cell.strip()).groups()


def assert_interval(cell: str, metrics: dict, key: str) -> None:
    for written, name in zip(interval(cell), (key, f"{key}_ci_low", f"{key}_ci_high")):
        assert abs(float(written) - metrics[name]) <= cited(written), (name, written, metrics[name])


def test_heatmap_table_matches_its_record():
    metrics = record("heatmap")
    rows = page_rows(r"\| k_t = \d+ \|")
    assert len(rows) == 3
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        t = int(cells[0].split("=")[1])
        for k, cell in zip((1, 2, 4, 8, 16), cells[1:6]):
            assert_interval(cell, metrics, f"normalized_mse@teacher_k={t},k={k}")
        assert_interval(cells[6], metrics, f"coarse_ratio@teacher_k={t}")
        assert_interval(cells[7], metrics, f"separation@teacher_k={t}")
        assert metrics[f"separation@teacher_k={t}_seeds"] == 3
    cells = [
        key for key in metrics if key.startswith("normalized_mse@") and not key.endswith(("_stderr", "_low", "_high"))
    ]
    best = {key: metrics[key] for key in cells}
    drift = max(abs(metrics[f"final_{key}"] - v) / v for key, v in best.items())
    written = re.search(r"final\s+error\s+is\s+within\s+([\d.]+)%\s+of\s+the\s+best", PAGE).group(1)
    assert abs(float(written) - 100 * drift) <= cited(written)


def test_budget_table_matches_its_record():
    metrics = record("budget")
    rows = page_rows(r"\| student k = \d+")
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        k = int(cells[0].split()[3])
        for (metric, steps), cell in zip(
            [(m, s) for s in (3000, 6000) for m in ("normalized_mse", "final_normalized_mse")], cells[1:5]
        ):
            assert_interval(cell, metrics, f"{metric}@k={k},steps={steps}")
        assert_interval(cells[5], metrics, f"budget_gain@k={k}")
    for steps in (3000, 6000):
        cell = re.search(rf"(\S+\s\[\S+,\s\S+\])\s+at\s+{steps}\s+steps", PAGE).group(1)
        assert_interval(cell, metrics, f"coarse_ratio@steps={steps}")
