"""A log-log slope with its standard error: the exponent of steps against d (the fit is the core's, in
:mod:`harness.stats`, shared with the ntk experiment); and, from a committed sweep record, the exponent's 95%
interval and a test of which shape the steps follow: a power law, the conjecture's d^k, d^k log d, or d^1.3.

    python -m harness.plugins.leap.fit docs/results/leap --out docs/results/leap/fits

reads the sweep's samples.jsonl (every network's log10 steps at every d and seed) and writes ``metrics.json``,
``commands.txt`` and ``shape_residuals.png`` into ``--out``. The unit of replication is a curve: network k of seed s
at every d (each network has its own initialisation and its own stream of fresh samples, so curves are independent
and so are the points of one curve). Per target, with k = max(Leap-1, 1):

- ``exponent``: the log-log slope, mean and 95% t interval over the curves;
- ``<form>_rms``: RMS residual in log10 steps of the geometric-mean steps (over curves) against each form with its
  best constant: ``power`` c d^b (b free: 2 parameters), ``dk`` c d^k, ``dk_log`` c d^k ln d and ``d13`` c d^1.3
  (the issue's alternative to d ln d: last session's leap-2 exponent; one parameter each);
- ``curve_<form>_rms`` and ``d13_minus_dk_log``: each curve's RMS residuals, and their per-curve difference
  (positive: d ln d fits better), mean and t interval over curves;
- ``*_seeds``: the same exponent and residual difference with the 95% t interval over the seeds' means (3 values, so
  wide): the networks of one sweep point share its held-out set, so curves of one seed are not fully independent,
  and this interval does not assume they are; ``seed_f`` says how much that matters: the mean over d of the
  between-seed variance of the seeds' mean log10 steps (times networks per seed) over the within-seed variance, ~1
  when a network's seed adds nothing to its own randomness;
- ``curvature``: the coefficient of (log10 d)^2 in a quadratic fit of log10 steps, mean and t interval over curves,
  beside ``curvature_dk_log``, the value c d^k ln d has on the same d grid (a power law has 0). d ln d and d^1.3 differ
  only in this bend (the local slope 1 + 1/ln d falls from 1.29 at d = 32 to 1.16 at d = 512), so it is the direct
  test; the residual difference is the same information through the two fits.
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

__all__ = ["loglog_slope", "fits", "shape_fits", "curves"]

FIXED = 1.3  # the fixed exponent the issue sets against d ln d (leap 2's fitted exponent over d in 32-128)
FORMS = ("power", "dk", "dk_log", "d13")


def rms(residuals: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(residuals))))


def shape_residuals(ds: list[float], log10_steps: list[float], k: int) -> dict[str, np.ndarray]:
    """Residuals (log10 steps) of c d^b (free b), c d^k, c d^k ln d and c d^1.3, each with its best constant."""
    x, y = np.log10(np.asarray(ds, dtype=float)), np.asarray(log10_steps, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    out = {"power": y - (intercept + slope * x)}
    for name, shape in (("dk", k * x), ("dk_log", k * x + np.log10(np.log(10**x))), ("d13", FIXED * x)):
        out[name] = y - shape - np.mean(y - shape)  # the best constant is the mean offset
    return out


def curvature(ds: list[float], log10_steps: list[float]) -> float:
    """The coefficient of (log10 d)^2 in a least-squares quadratic in log10 d (0 for a power law)."""
    x = np.log10(np.asarray(ds, dtype=float))
    return float(np.polyfit(x - x.mean(), np.asarray(log10_steps, dtype=float), 2)[0])


def shape_fits(ds: list[float], log10_steps: list[float], k: int) -> dict[str, float]:
    """RMS residuals (log10 steps) of the four forms, the free power's exponent and the curvature."""
    residuals = shape_residuals(ds, log10_steps, k)
    out = {f"{name}_rms": rms(value) for name, value in residuals.items()}
    out["power_exponent"] = loglog_slope(ds, [10**v for v in log10_steps])[0]
    out["curvature"] = curvature(ds, log10_steps) if len(ds) > 2 else math.nan
    return out


def curves(samples: list[dict]) -> dict[str, dict]:
    """Per target: its leap, the sorted d values and the curves ({(seed, network): [log10 steps at each d]}) that
    have a value at every d."""
    groups: dict[str, dict] = {}
    for row in samples:
        metrics = row["metrics"]
        group = groups.setdefault(row["args"]["target"], {"leap": int(metrics["leap"]), "points": {}})
        seed, d = int(row.get("seed", 0)), float(row["args"]["d"])
        for key, value in metrics.items():
            if key.startswith("log10_steps@run="):
                group["points"].setdefault((seed, int(key[16:])), {})[d] = value
    out = {}
    for target, group in groups.items():
        ds = sorted({d for points in group["points"].values() for d in points})
        full = {c: [p[d] for d in ds] for c, p in sorted(group["points"].items()) if len(p) == len(ds)}
        out[target] = {"leap": group["leap"], "d": ds, "curves": full}
    return out


def seed_f(rows: dict) -> float:
    """Mean over d of n x var(seed means) / mean within-seed variance, n networks per seed (one-way ANOVA's F)."""
    by_seed: dict[int, list] = {}
    for (seed, _), row in rows.items():
        by_seed.setdefault(seed, []).append(row)
    if len(by_seed) < 2 or min(len(members) for members in by_seed.values()) < 2:
        return math.nan
    ratios = []
    for i in range(len(next(iter(rows.values())))):
        groups = [np.array([row[i] for row in members]) for members in by_seed.values()]
        within = float(np.mean([g.var(ddof=1) for g in groups]))
        between = float(np.var([g.mean() for g in groups], ddof=1)) * len(groups[0])
        ratios.append(between / within if within > 0 else math.nan)
    return float(np.mean(ratios))


def interval(prefix: str, values: list[float]) -> dict[str, float]:
    """``prefix``, ``prefix_low`` and ``prefix_high``: the mean and 95% t interval (prefix holds ``@target``)."""
    name, at = prefix.split("@")
    found = mean_ci(values)
    return {f"{name}@{at}": found.estimate, f"{name}_low@{at}": found.low, f"{name}_high@{at}": found.high}


def fits(samples: list[dict]) -> dict[str, float]:
    """Per target: the exponent's and the curvature's mean and 95% t interval over curves, the four forms'
    residuals on the geometric means and per curve, and the per-curve residual difference of d^1.3 and d^k ln d."""
    out: dict[str, float] = {}
    for target, group in sorted(curves(samples).items()):
        ds, k, at = group["d"], max(group["leap"] - 1, 1), f"@target={target}"
        rows = list(group["curves"].values())
        slopes = [loglog_slope(ds, [10**v for v in row])[0] for row in rows]
        out.update(interval(f"exponent{at}", slopes))
        seeds = {seed for seed, _ in group["curves"]}
        out.update({f"networks{at}": float(len(rows)), f"seeds{at}": float(len(seeds)), f"conjecture{at}": float(k)})
        means = [float(np.mean(column)) for column in zip(*rows)]  # log10 of the geometric-mean steps at each d
        out.update({f"{name}{at}": value for name, value in shape_fits(ds, means, k).items()})
        per_curve = [{name: rms(r) for name, r in shape_residuals(ds, row, k).items()} for row in rows]
        for name in FORMS:
            out.update(interval(f"curve_{name}_rms{at}", [c[name] for c in per_curve]))
        differences = [c["d13"] - c["dk_log"] for c in per_curve]
        out.update(interval(f"d13_minus_dk_log{at}", differences))
        for name, values in (("exponent", slopes), ("d13_minus_dk_log", differences)):
            by_seed = {seed: [] for seed, _ in group["curves"]}
            for (seed, _), value in zip(group["curves"], values):
                by_seed[seed].append(value)
            out.update(interval(f"{name}_seeds{at}", [float(np.mean(v)) for v in by_seed.values()]))
        out[f"seed_f{at}"] = seed_f(group["curves"])
        if len(ds) > 2:
            out.update(interval(f"curvature{at}", [curvature(ds, row) for row in rows]))
            out[f"curvature_dk_log{at}"] = curvature(ds, list(np.log10(np.log(ds))))
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
    samples = read_jsonl(path)
    result = fits(samples)
    write_study(
        args.out, result, ["python -m harness.plugins.leap.fit " + " ".join(argv if argv is not None else sys.argv[1:])]
    )
    from harness.plugins.leap.plots import plot_shape_residuals

    plot_shape_residuals(args.out / "shape_residuals.png", curves(samples), shape_residuals)
    for key, value in sorted(result.items()):
        if math.isfinite(value):
            print(f"{key}: {value:.4g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
