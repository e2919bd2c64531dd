"""The ntk results page's numbers (docs/papers/ntk.md) are the committed run's (docs/results/ntk/metrics.json)."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_quotes_the_committed_metrics():
    metrics = json.loads((ROOT / "docs/results/ntk/metrics.json").read_text())
    page = ROOT.joinpath("docs/papers/ntk.md").read_text()
    section = page[page.index("# ntk:") :]
    for target in ("teacher", "random"):
        for name in ("fitted_exponent", "late_exponent"):
            value, stderr = metrics[f"{name}@target={target}"], metrics[f"{name}@target={target}_stderr"]
            assert f"{value:.2f} ± {stderr:.2f}" in section, (name, target)
    assert f"{metrics['fitted_exponent']:.2f}" in section
    assert (ROOT / "docs/results/ntk/alpha_needed_vs_T.png").stat().st_size > 1000
