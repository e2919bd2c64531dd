"""The distill sweep summary: a run distilled at several beam widths (beams=) becomes one cell per width, keyed
d, r, beam, family, with means and 95% t intervals over seeds; a plain sweep keeps its d, r keys."""

from pathlib import Path

import pytest
from harness.plugins.distill.experiment import agreement_table

from harness.stats import mean_ci


class Folder:
    """The one thing agreement_table asks of a run context: where to write."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, name: str) -> Path:
        return self.root / name


def point(seed: int, family: str, wide: float, narrow: float, cart: float) -> dict:
    base = {"network_test_accuracy": 1.0, "agreement_with_target": wide, "baseline_agreement_with_target": cart}
    metrics = {**base, "agreement": wide, "baseline_agreement": cart, "probes_used": 100.0, "tree_depth": 2.0}
    metrics.update({"time_s": 1.0, "target_recovered": 1.0, "target_root_correlation": 0.0})
    metrics.update({"baseline_root_correct": 0.0, "agreement@beam=2": narrow, "probes_used@beam=2": 20.0})
    metrics.update({"agreement_with_target@beam=2": narrow, "target_recovered@beam=2": 0.0, "tree_depth@beam=2": 2.0})
    args = {"d": 8, "r": 2, "beam": 6, "beams": "2,6", "family": family}
    return {"args": args, "seed": seed, "metrics": metrics}


def test_beams_become_cells_keyed_by_beam_and_family(tmp_path):
    points = [point(s, f, 0.9 + s / 100, 0.7 + s / 10, 0.6) for f in ("opposite", "independent") for s in range(3)]
    out = agreement_table(points, Folder(tmp_path))
    narrow = mean_ci([0.7, 0.8, 0.9])
    cell = "d=8,r=2,beam=2,family=opposite"
    assert out[f"agreement@{cell}"] == pytest.approx(0.8)
    assert (out[f"agreement@{cell}_ci_low"], out[f"agreement@{cell}_ci_high"]) == pytest.approx(
        (narrow.low, narrow.high)
    )
    assert out[f"probes_used@{cell}"] == 20 and out["probes_used@d=8,r=2,beam=6,family=independent"] == 100
    assert out[f"agreement_gain@{cell}"] == pytest.approx(0.2)  # paired with CART seed by seed
    assert out["baseline_agreement@d=8,r=2,beam=6,family=opposite"] == pytest.approx(0.6)
    table = (tmp_path / "agreement_table.md").read_text().splitlines()
    assert table[0].startswith("| d | r | beam | family | seeds |") and len(table) == 2 + 4
    assert (tmp_path / "agreement_vs_beam_width.png").stat().st_size > 10_000


def test_a_plain_sweep_keeps_its_d_r_keys(tmp_path):
    points = [point(s, "opposite", 0.9, 0.8, 0.6) for s in range(3)]
    for p in points:
        p["metrics"] = {k: v for k, v in p["metrics"].items() if "@" not in k}
    out = agreement_table(points, Folder(tmp_path))
    assert set(out) == {"agreement_gain@d=8,r=2" + s for s in ("", "_stderr", "_ci_low", "_ci_high")}
    assert not (tmp_path / "agreement_vs_beam_width.png").exists()
