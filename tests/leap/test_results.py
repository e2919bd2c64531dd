"""The leap results page's numbers (docs/papers/leap.md) are the committed run's (docs/results/leap/metrics.json)."""

import json
from pathlib import Path

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
