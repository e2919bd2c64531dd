"""The leap results page's numbers (docs/papers/leap.md) are the committed run's (docs/results/leap/metrics.json)."""

import json
from pathlib import Path

import pytest
from harness.plugins.leap.fit import fits

ROOT = Path(__file__).resolve().parents[2]


def test_readme_quotes_the_committed_metrics():
    metrics = json.loads((ROOT / "docs/results/leap/metrics.json").read_text())
    page = ROOT.joinpath("docs/papers/leap.md").read_text()
    section = page[page.index("# leap:") :]
    for target in ("staircase", "leap2", "leap3"):
        value, stderr = metrics[f"exponent@target={target}"], metrics[f"exponent@target={target}_stderr"]
        assert f"{value:.2f} ± {stderr:.2f}" in section, target
        logs = [metrics[f"log10_steps@target={target},d={d}"] for d in (32, 45, 64, 90, 128)]
        steps = ", ".join(str(round(10**v)) for v in logs)
        assert steps in section, target
    assert (ROOT / "docs/results/leap/steps_vs_d.png").stat().st_size > 1000


def test_interval_and_shape_fits_are_the_sweeps():
    """docs/results/leap/fits is what leap.fit computes from the sweep's samples, and the page quotes it."""
    result = json.loads((ROOT / "docs/results/leap/fits/metrics.json").read_text())
    samples = [json.loads(line) for line in (ROOT / "docs/results/leap/samples.jsonl").read_text().splitlines()]
    assert result == pytest.approx(fits(samples))
    metrics = json.loads((ROOT / "docs/results/leap/metrics.json").read_text())
    section = ROOT.joinpath("docs/papers/leap.md").read_text()
    for target in ("staircase", "leap2", "leap3"):
        at = f"@target={target}"
        assert result[f"exponent{at}"] == pytest.approx(metrics[f"exponent{at}"]) and result[f"networks{at}"] >= 3
        assert f"[{result[f'exponent_low{at}']:.2f}, {result[f'exponent_high{at}']:.2f}]" in section, target
        residuals = " | ".join(f"{result[f'{name}_rms{at}']:.3f}" for name in ("power", "dk", "dk_log"))
        assert f"| {residuals} |" in section, target
    assert result["dk_log_rms@target=leap2"] < result["dk_rms@target=leap2"]  # the page: d ln d fits leap 2
    assert result["exponent_low@target=leap2"] > 1  # and its interval excludes the conjecture's 1


def test_shape_fits_recover_planted_curves():
    import numpy as np
    from harness.plugins.leap.fit import shape_fits

    ds = [32, 45, 64, 90, 128]
    planted = [float(np.log10(7 * d * np.log(d))) for d in ds]
    out = shape_fits(ds, planted, k=1)
    assert out["dk_log_rms"] < 1e-12 < out["dk_rms"] and out["power_exponent"] > 1.1
    out = shape_fits(ds, [float(np.log10(3 * d**2)) for d in ds], k=2)
    assert out["dk_rms"] < 1e-12 and out["power_exponent"] == pytest.approx(2.0)
