"""The incremental_rank results page (docs/papers/incremental_rank.md) quotes its records: the toy sweep
(docs/results/incremental_rank/), the ViT sweep (docs/results/incremental_rank/vit/) and the realignment study."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from harness.plugins.incremental_rank.realign import tests as realign_tests

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs/results/incremental_rank"


def page() -> str:
    text = (ROOT / "docs/papers/incremental_rank.md").read_text()
    match = re.search(r"# incremental_rank:.*", text, re.S)
    assert match, "docs/papers/incremental_rank.md has no incremental_rank section"
    return match.group(0)


def record(folder: Path) -> tuple[dict, list[dict]]:
    metrics = json.loads((folder / "metrics.json").read_text())
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines() if line.strip()]
    return metrics, samples


def rows(text: str, first: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if re.match(rf"\| {first} \|", line)
    ]


def interval(m: dict, key: str, digits: int) -> str:
    return f"{m[key]:.{digits}f} [{m[key + '_ci_low']:.{digits}f}, {m[key + '_ci_high']:.{digits}f}]"


def significant(samples: list[dict], alpha: str, key: str) -> str:
    chosen = [s for s in samples if f"{s['args']['alpha']:g}" == f"{float(alpha):g}"]
    return f"{sum(s['metrics'][key] < 0.05 for s in chosen)}/{len(chosen)}"


def test_toy_table_matches_the_sweep():
    m, samples = record(RESULTS)
    assert m and len({s["seed"] for s in samples}) >= 3
    table = rows(page(), r"0\.\d+")
    assert len(table) == 4
    for alpha, drops, distance, sig, width, t_drops, t_distance, t_sig, ranks in table:
        at = f"@alpha={alpha}"
        assert drops == f"{m['toy_n_drops' + at]:.1f}"
        null = m["toy_null_jump_drop_distance" + at]
        assert distance == f"{interval(m, 'toy_jump_drop_distance' + at, 2)} ({null:.2f})"
        assert sig == significant(samples, alpha, "toy_alignment_p")
        assert width == f"{m['toy_transition_width' + at]:.3f}"
        assert t_drops == f"{m['transformer_n_drops' + at]:.1f}"
        expected = f"{interval(m, 'transformer_jump_drop_distance' + at, 1)}"
        assert t_distance == f"{expected} ({m['transformer_null_jump_drop_distance' + at]:.1f})"
        assert t_sig == significant(samples, alpha, "transformer_alignment_p")
        assert ranks == f"{m['transformer_qk_rank' + at]:.1f}, {m['transformer_vo_rank' + at]:.1f}"
    assert f"fitted exponent {m['toy_width_exponent']:.2f}" in page()


def test_vit_table_matches_the_sweep():
    m, samples = record(RESULTS / "vit")
    assert len({s["seed"] for s in samples}) >= 3
    table = rows(page(), r"alpha = 0\.\d+")
    assert len(table) == 2
    for label, loss, accuracy, drops, jumps, distance, null, sig, qk, vo in table:
        alpha = label.removeprefix("alpha = ")
        at = f"@alpha={alpha}"
        assert loss == interval(m, "final_loss" + at, 3) and accuracy == interval(m, "test_accuracy" + at, 3)
        assert drops == f"{m['n_drops' + at]:.1f}" and jumps == f"{m['n_rank_jumps' + at]:.1f}"
        assert distance == interval(m, "jump_drop_distance" + at, 1)
        assert null == f"{m['null_jump_drop_distance' + at]:.1f}"
        assert sig == significant(samples, alpha, "alignment_p")
        for cell, kind in ((qk, "qk"), (vo, "vo")):
            assert cell == ", ".join(f"{m[f'{kind}_stable_rank_{part}' + at]:.2f}" for part in ("q1", "q2", "end"))


@pytest.mark.parametrize("folder", ["realign", "vit/realign"])
def test_realignment_records_redo_and_match_the_page(folder):
    """The study's p-values follow from its saved inputs, and the page quotes how many runs pass each variant."""
    metrics = json.loads((RESULTS / folder / "metrics.json").read_text())
    inputs = json.loads((RESULTS / folder / "inputs.json").read_text())
    for key, run in inputs.items():
        redone = realign_tests(**run)
        assert {k: metrics[f"{key}/{k}"] for k in redone} == pytest.approx(redone, nan_ok=True)
    text = " ".join(page().split())  # the page wraps its lines
    for name in sorted({key.split("@")[0] for key in inputs}):
        keys = [key for key in inputs if key.startswith(name + "@")]
        counts = [sum(metrics[f"{key}/{v}_p"] < 0.05 for key in keys) for v in ("uniform", "shift", "new_low_shift")]
        quoted = f"{name}: p < 0.05 in {counts[0]}, {counts[1]} and {counts[2]} of {len(keys)} runs"
        assert quoted in text, quoted
