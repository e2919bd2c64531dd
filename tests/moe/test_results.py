"""The moe results page's table (docs/papers/moe.md) is the committed sweep's metrics
(docs/results/moe/metrics.json), rounded."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_table_matches_committed_metrics():
    metrics = json.loads((ROOT / "docs/results/moe/metrics.json").read_text())
    section = (ROOT / "docs/papers/moe.md").read_text().split("# moe:", 1)[1]
    rows = [line for line in section.splitlines() if re.match(r"\| \d+( \(teacher\))? \|", line)]
    assert len(rows) == 5
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        k = cells[0].split()[0]
        for experts, cell in zip((16, 32, 64), cells[1:4]):
            value, stderr = (float(v) for v in cell.split(" ± "))
            key = f"normalized_mse@k={k},experts={experts}"
            assert abs(value - metrics[key]) <= 0.0005 and abs(stderr - metrics[f"{key}_stderr"]) <= 0.0005, key
        assert abs(float(cells[4]) - metrics[f"best_normalized_mse@k={k}"]) <= 0.0005
        if "teacher" not in cells[5]:
            value, stderr = (float(v) for v in cells[5].split(" ± "))
            key = f"excess_over_teacher_k@k={k}"
            assert abs(value - metrics[key]) <= 0.0005 and abs(stderr - metrics[f"{key}_stderr"]) <= 0.0005, key


def test_readme_frozen_numbers_match_committed_metrics():
    metrics = json.loads((ROOT / "docs/results/moe/frozen/metrics.json").read_text())
    section = (ROOT / "docs/papers/moe.md").read_text().split("# moe:", 1)[1]
    for part, text in (
        ("gate", r"([\d.]+) ± ([\d.]+) with the gate frozen"),
        ("experts", r"([\d.]+) ± ([\d.]+) with the experts frozen"),
    ):
        for written, key in zip(
            re.search(text, section).groups(), (f"normalized_mse@freeze={part}", f"normalized_mse@freeze={part}_stderr")
        ):
            assert abs(float(written) - metrics[key]) <= 0.5 * 10 ** -len(written.split(".")[1]) + 1e-12, key
