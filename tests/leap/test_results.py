"""The leap results page's numbers (docs/papers/leap.md) are the committed records': the Boolean sweeps
(docs/results/leap: staircase and leap 2 to d = 512; docs/results/leap/leap3: leap 3 to d = 256), the Gaussian sweep
(docs/results/leap/gaussian) and the fits made from each (``fits/``)."""

import json
import re
from pathlib import Path

import pytest
from harness.plugins.leap.fit import fits

ROOT = Path(__file__).resolve().parents[2]
# record: (the data the page's rows name, the preset that made it, its targets)
RECORDS = {
    "leap": ("boolean", "leap", ("staircase", "leap2")),
    "leap/leap3": ("boolean", "leap3", ("leap3",)),
    "leap/gaussian": ("gaussian", "leap_gaussian", ("staircase", "leap2", "leap3")),
}


def page() -> str:
    text = ROOT.joinpath("docs/papers/leap.md").read_text()
    return text[text.index("# leap:") :]


def load(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


@pytest.mark.parametrize("record", sorted(RECORDS))
def test_steps_and_exponents_are_the_sweeps(record):
    """Each table row: the geometric-mean steps at each d of the grid, the exponent ± stderr and its t interval."""
    folder, (data, preset, targets) = ROOT / "docs/results" / record, RECORDS[record]
    metrics, fitted, section = load(folder), load(folder / "fits"), page()
    assert f"harness run --task {preset} " in (folder / "config.yaml").read_text()
    for target in targets:
        at = f"@target={target}"
        # per-d keys name the target only where it is a grid axis (leap3.yaml fixes it in args)
        point = f"target={target}," if len(targets) > 1 else ""
        found = (re.fullmatch(rf"log10_steps@{point}d=(\d+)", key) for key in metrics)
        ds = sorted(int(match.group(1)) for match in found if match)
        assert len(ds) >= 3, (record, target)
        steps = ", ".join(f"{round(10 ** metrics[f'log10_steps@{point}d={d}']):,}" for d in ds)
        row = f"| {data} | {target} | {int(metrics[f'leap{at}'])} | {steps} |"
        assert row in section, row
        value, stderr = metrics[f"exponent{at}"], metrics[f"exponent{at}_stderr"]
        low, high = fitted[f"exponent_low{at}"], fitted[f"exponent_high{at}"]
        interval = f"{value:.2f} ± {stderr:.2f} | [{low:.2f}, {high:.2f}]"
        low, high = fitted[f"exponent_seeds_low{at}"], fitted[f"exponent_seeds_high{at}"]
        interval += f" | [{low:.2f}, {high:.2f}] | {fitted[f'seed_f{at}']:.1f}"
        assert f"| {interval} |" in section, (data, target)
        assert fitted[f"exponent{at}"] == pytest.approx(value) and fitted[f"seeds{at}"] >= 3
    assert (folder / "steps_vs_d.png").stat().st_size > 1000


@pytest.mark.parametrize("record", sorted(RECORDS))
def test_shape_fits_are_the_sweeps(record):
    """``fits/`` is what leap.fit computes from the sweep's samples, and the page's shape table quotes it."""
    folder, (data, _, targets) = ROOT / "docs/results" / record, RECORDS[record]
    result = load(folder / "fits")
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert result == pytest.approx(fits(samples), nan_ok=True)
    section = page()
    for target in targets:
        at = f"@target={target}"
        residuals = " | ".join(f"{result[f'{name}_rms{at}']:.3f}" for name in ("power", "dk", "dk_log", "d13"))
        low, high = result[f"d13_minus_dk_log_low{at}"], result[f"d13_minus_dk_log_high{at}"]
        difference = f"{result[f'd13_minus_dk_log{at}']:+.3f} [{low:+.3f}, {high:+.3f}]"
        low, high = result[f"d13_minus_dk_log_seeds_low{at}"], result[f"d13_minus_dk_log_seeds_high{at}"]
        difference += f" | [{low:+.3f}, {high:+.3f}]"
        low, high = result[f"curvature_low{at}"], result[f"curvature_high{at}"]
        bend = f"{result[f'curvature{at}']:+.3f} [{low:+.3f}, {high:+.3f}]"
        row = f"| {data} | {target} | {residuals} | {difference} | {bend} | {result[f'curvature_dk_log{at}']:+.3f} |"
        assert row in section, row
    assert (folder / "fits" / "shape_residuals.png").stat().st_size > 1000
    assert (folder / "fits" / "commands.txt").read_text().startswith("python -m harness.plugins.leap.fit ")


def test_pickup_steps_quoted_are_the_d128_runs():
    """The saddle-to-saddle sentence quotes each d = 128 run's mean pick-up step of its support coordinates."""
    section = page()
    for record, coordinates in (("staircase-d128", (1, 2, 3)), ("leap2-d128", (1, 2, 3)), ("leap3-d128", (1,))):
        metrics = load(ROOT / "docs/results/leap" / record)
        for c in coordinates:
            assert f"10^{metrics[f'pickup_log10_step@x{c}']:.2f}" in section, (record, c)
        assert (ROOT / "docs/results/leap" / record / "loss_curve.png").stat().st_size > 1000
