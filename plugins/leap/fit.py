"""A log-log slope with its standard error: the exponent of steps against d (the fit is the core's, in
:mod:`harness.stats`, shared with the ntk experiment); and, from a committed sweep record, the exponent's 95%
interval and a test of power law against the conjecture's d^k log d.

    python -m harness.plugins.leap.fit docs/results/leap --out docs/results/leap/fits

reads the sweep's samples.jsonl (every network's log10 steps at every d) and writes ``metrics.json`` and
``commands.txt`` into ``--out``: per target the exponent's mean and t interval over the networks (network k of every
d makes one curve), and the RMS residual (in log10 steps, on the geometric-mean steps) of three fits: a free power
law c d^b (2 parameters), the conjecture's c d^k (k = max(Leap-1, 1), 1 parameter) and c d^k ln d (1 parameter).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from harness.report import write_study
from harness.stats import loglog_slope, mean_ci
from harness.store import read_jsonl

__all__ = ["loglog_slope", "fits"]


def rms(residuals: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(residuals))))


def shape_fits(ds: list[float], log10_steps: list[float], k: int) -> dict[str, float]:
    """RMS residuals (log10 steps) of c d^b (free b), c d^k and c d^k ln d, each with its best constant."""
    x, y = np.log10(np.asarray(ds, dtype=float)), np.asarray(log10_steps, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    out = {"power_exponent": float(slope), "power_rms": rms(y - (intercept + slope * x))}
    for name, shape in (("dk", k * x), ("dk_log", k * x + np.log10(np.log(10**x)))):
        out[f"{name}_rms"] = rms(y - shape - np.mean(y - shape))  # the best constant is the mean offset
    return out


def fits(samples: list[dict]) -> dict[str, float]:
    """Per target: the exponent's mean and 95% t interval over networks, and the three fits' residuals."""
    groups: dict[str, dict] = {}
    for row in samples:
        metrics = row["metrics"]
        group = groups.setdefault(row["args"]["target"], {"leap": int(metrics["leap"]), "d": {}})
        runs = sorted((k for k in metrics if k.startswith("log10_steps@run=")), key=lambda k: int(k[16:]))
        group["d"][float(row["args"]["d"])] = [metrics[k] for k in runs]
    out: dict[str, float] = {}
    for target, group in sorted(groups.items()):
        ds = sorted(group["d"])
        count = min(len(group["d"][d]) for d in ds)
        slopes = [loglog_slope(ds, [10 ** group["d"][d][k] for d in ds])[0] for k in range(count)]
        interval = mean_ci(slopes)
        k = max(group["leap"] - 1, 1)
        at = f"@target={target}"
        out.update({f"exponent{at}": interval.estimate, f"exponent_low{at}": interval.low})
        out.update({f"exponent_high{at}": interval.high, f"networks{at}": float(count), f"conjecture{at}": float(k)})
        means = [float(np.mean(group["d"][d])) for d in ds]  # log10 of the geometric-mean steps
        out.update({f"{name}{at}": value for name, value in shape_fits(ds, means, k).items()})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="exponent intervals and shape fits from a leap sweep record")
    parser.add_argument("record", type=Path, help="a leap sweep record folder (with samples.jsonl)")
    parser.add_argument("--out", type=Path, required=True, help="folder for metrics.json and commands.txt")
    args = parser.parse_args(argv)
    path = args.record / "samples.jsonl"
    if not path.exists():
        print(f"error: {path} not found: give the folder of a leap sweep record", file=sys.stderr)
        return 2
    result = fits(read_jsonl(path))
    write_study(
        args.out, result, ["python -m harness.plugins.leap.fit " + " ".join(argv if argv is not None else sys.argv[1:])]
    )
    for key, value in sorted(result.items()):
        if math.isfinite(value):
            print(f"{key}: {value:.4g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
