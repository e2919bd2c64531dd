"""The ntk results page's numbers (docs/papers/ntk.md) are the committed run's (docs/results/ntk/metrics.json), and
its claims (the worst case's exponent is 1, the random-label net's window exponent is above 1) are the record's."""

import json
from pathlib import Path

import pytest
from harness.plugins.ntk.fit import DECADE, exponent_intervals

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("teacher", "random", "tight")
SPREAD_DIGITS = {"teacher": (0, 0), "random": (1, 0), "tight": (2, 0)}  # as the page rounds alpha/T, alpha/T^2
DECADES = tuple(f"{DECADE}{window}" for window in ("1-10", "10-100", "100-1e+03"))


@pytest.fixture(scope="module")
def record():
    metrics = json.loads((ROOT / "docs/results/ntk/metrics.json").read_text())
    intervals = json.loads((ROOT / "docs/results/ntk/exponent_ci/metrics.json").read_text())
    samples = [json.loads(line) for line in (ROOT / "docs/results/ntk/samples.jsonl").read_text().splitlines()]
    page = ROOT.joinpath("docs/papers/ntk.md").read_text()
    return metrics, intervals, samples, page[page.index("# ntk:") :]


def test_page_quotes_the_committed_metrics(record):
    metrics, intervals, samples, section = record
    assert intervals == pytest.approx(exponent_intervals(samples))  # the study's record is the sweep's seeds
    for target in TARGETS:
        at = f"@target={target}"
        assert intervals[f"seeds{at}"] >= 3
        label = "random labels" if target == "random" else target
        row = next(line for line in section.splitlines() if line.startswith(f"| {label}"))
        for name in ("fitted_exponent",) + DECADES + ("param_fitted_exponent",):
            value, low, high = (intervals[f"{name}{suffix}{at}"] for suffix in ("", "_low", "_high"))
            assert value == pytest.approx(metrics[f"{name}{at}"])
            assert f"| {value:.2f} [{low:.2f}, {high:.2f}] |" in row, (name, target)
        assert intervals[f"late_exponent{at}"] == intervals[f"{DECADES[-1]}{at}"]  # the last decade, by two names
        for name, digits in zip(("alpha_over_T_spread", "alpha_over_T2_spread"), SPREAD_DIGITS[target]):
            mean, stderr = metrics[f"{name}{at}"], metrics[f"{name}{at}_stderr"]
            assert f"{mean:.{digits}f} ± {stderr:.{digits}f}" in row, (name, target)
    assert f"{metrics['fitted_exponent']:.2f}" in section
    assert (ROOT / "docs/results/ntk/alpha_needed_vs_T.png").stat().st_size > 1000
    assert (ROOT / "docs/results/ntk/tight-seed0/deviation_curves.png").stat().st_size > 1000


def test_page_claims_are_the_records(record):
    _, intervals, _, _ = record
    tight = "@target=tight"
    for name in ("fitted_exponent",) + DECADES:  # the worst case reaches 1 and not beyond, in every window
        assert 0.98 <= intervals[f"{name}_low{tight}"] and intervals[f"{name}_high{tight}"] <= 1.05, name
    assert intervals["fitted_exponent_low@target=random"] > 1  # the net's window exponent exceeds 1 ...
    assert intervals[f"{DECADES[1]}_low@target=random"] > 1
    for target in ("teacher", "random"):  # ... and over the last decade both of its targets stay below 1
        assert intervals[f"late_exponent_high@target={target}"] < 1
    assert 1.4 < intervals[f"param_fitted_exponent_low{tight}"] < intervals[f"param_fitted_exponent_high{tight}"] < 1.6
