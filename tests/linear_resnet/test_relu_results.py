"""The ReLU ResNet table of docs/papers/linear_resnet.md quotes the committed sweep
(docs/results/linear_resnet/relu/)."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORD = ROOT / "docs/results/linear_resnet/relu"


def interval(m: dict, key: str, digits: int) -> str:
    return f"{m[key]:.{digits}f} [{m[key + '_ci_low']:.{digits}f}, {m[key + '_ci_high']:.{digits}f}]"


def test_relu_table_matches_the_sweep():
    m = json.loads((RECORD / "metrics.json").read_text())
    samples = [json.loads(line) for line in (RECORD / "samples.jsonl").read_text().splitlines() if line.strip()]
    assert len({s["seed"] for s in samples}) >= 3
    page = (ROOT / "docs/papers/linear_resnet.md").read_text()
    section = page[page.index("## Nonlinear:") :]
    table = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if re.match(r"\| \d+ \| [\d.]+ \|", line)
    ]
    assert len(table) == 8
    for depth, lam, rank, linear_rank, error, linear_error in table:
        at = f"@lam={float(lam)},depth={depth}"
        assert rank == interval(m, "jacobian_rank" + at, 1)
        assert linear_rank == f"{m['linear_rank' + at]:.1f}"
        assert error == interval(m, "test_error" + at, 3) and linear_error == interval(m, "linear_test_error" + at, 3)
    assert (RECORD / "relu_jacobian_rank.png").stat().st_size > 1000
