"""The incremental_rank results page's table (docs/papers/incremental_rank.md) quotes
docs/results/incremental_rank/metrics.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_table_matches_committed_metrics():
    page = (ROOT / "docs/papers/incremental_rank.md").read_text()
    match = re.search(r"# incremental_rank:.*", page, re.S)
    assert match, "docs/papers/incremental_rank.md has no incremental_rank section"
    m = json.loads((ROOT / "docs/results/incremental_rank/metrics.json").read_text())
    rows = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in match.group(0).splitlines()
        if re.match(r"\| 0\.\d+ \|", line)
    ]
    assert len(rows) == 4
    for alpha, drops, aligned, width, t_drops, t_aligned, ranks in rows:
        at = f"@alpha={alpha}"
        assert int(drops) == m["toy_n_drops" + at]
        assert (
            aligned == f"{round(m['toy_aligned_fraction' + at] * m['toy_n_rank_jumps' + at])}/"
            f"{int(m['toy_n_rank_jumps' + at])}"
        )
        assert abs(float(width) - m["toy_transition_width" + at]) < 6e-4
        assert int(t_drops) == m["transformer_n_drops" + at]
        jumps = m["transformer_n_rank_jumps" + at]
        assert t_aligned == f"{round(m['transformer_aligned_fraction' + at] * jumps)}/{int(jumps)}"
        assert ranks == f"{int(m['transformer_qk_rank' + at])}, {int(m['transformer_vo_rank' + at])}"
    assert f"fitted exponent {m['toy_width_exponent']:.2f}" in match.group(0)
