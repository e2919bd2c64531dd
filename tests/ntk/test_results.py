"""The ntk results page's numbers (docs/papers/ntk.md) are the committed run's (docs/results/ntk/metrics.json)."""

import json
from pathlib import Path

import pytest
from harness.plugins.ntk.fit import exponent_intervals

ROOT = Path(__file__).resolve().parents[2]


def test_readme_quotes_the_committed_metrics():
    metrics = json.loads((ROOT / "docs/results/ntk/metrics.json").read_text())
    page = ROOT.joinpath("docs/papers/ntk.md").read_text()
    section = page[page.index("# ntk:") :]
    intervals = json.loads((ROOT / "docs/results/ntk/exponent_ci/metrics.json").read_text())
    samples = [json.loads(line) for line in (ROOT / "docs/results/ntk/samples.jsonl").read_text().splitlines()]
    assert intervals == pytest.approx(exponent_intervals(samples))  # the study's record is the sweep's seeds
    for target in ("teacher", "random"):
        at = f"@target={target}"
        assert intervals[f"seeds{at}"] >= 3
        for name in ("fitted_exponent", "late_exponent", "param_fitted_exponent"):
            value, low, high = (intervals[f"{name}{suffix}{at}"] for suffix in ("", "_low", "_high"))
            assert value == pytest.approx(metrics[f"{name}{at}"])
            assert f"{value:.2f} [{low:.2f}, {high:.2f}]" in section, (name, target)
    assert f"{metrics['fitted_exponent']:.2f}" in section
    assert intervals["fitted_exponent_low@target=random"] > 1  # the page's claim: the window exponent exceeds 1
    assert (ROOT / "docs/results/ntk/alpha_needed_vs_T.png").stat().st_size > 1000
