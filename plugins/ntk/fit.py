"""The two numbers the experiment fits: the alpha that keeps a deviation below epsilon, and a log-log slope; and,
from a committed sweep record, each fitted exponent's 95% interval over seeds.

    python -m harness.plugins.ntk.fit docs/results/ntk --out docs/results/ntk/exponent_ci

reads the sweep's samples.jsonl and writes ``metrics.json`` (per target: mean, low and high of the t interval over
seeds of ``fitted_exponent``, ``late_exponent`` and ``param_fitted_exponent``) and ``commands.txt`` into ``--out``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from harness.report import write_study
from harness.stats import loglog_slope, mean_ci  # the fit shared with leap; re-exported for the task
from harness.store import read_jsonl

__all__ = ["alpha_needed", "loglog_slope", "decade_exponents", "exponent_intervals"]
EXPONENTS = ("fitted_exponent", "late_exponent", "param_fitted_exponent")
DECADE = "decade_exponent@T="  # the local exponents, one per factor 10 of T: decade_exponent@T=1-10, ...


def alpha_needed(alphas: list[float], deviations: list[float], epsilon: float) -> float:
    """The smallest alpha whose deviation is <= epsilon, interpolated linearly in (log alpha, log deviation).

    ``alphas`` increasing, ``deviations`` the sup gaps at one T. NaN when no alpha of the grid gets below epsilon
    or the smallest one already does (the answer lies outside the grid; it is not extrapolated).
    """
    below = [i for i, dev in enumerate(deviations) if dev <= epsilon]
    if not below or below[0] == 0:
        return math.nan
    i = below[0]  # deviations[i - 1] > epsilon >= deviations[i]
    x0, x1 = math.log(alphas[i - 1]), math.log(alphas[i])
    y0, y1 = math.log(deviations[i - 1]), math.log(max(deviations[i], 1e-300))
    share = (math.log(epsilon) - y0) / (y1 - y0)
    return math.exp(x0 + share * (x1 - x0))


def decade_exponents(times: list[float], needed: list[float]) -> dict[str, float]:
    """The log-log slope of ``needed`` against ``times`` over each factor 10 of T from the first T on (ends
    included): ``{"decade_exponent@T=1-10": slope, ...}``. A curve's local exponent, where one slope over the whole
    window averages an S-shaped curve's steep middle with its flat ends."""
    out = {}
    low = times[0]
    while low * 10 <= times[-1] * (1 + 1e-9):
        inside = [k for k, t in enumerate(times) if low * (1 - 1e-9) <= t <= low * 10 * (1 + 1e-9)]
        slope = loglog_slope([times[k] for k in inside], [needed[k] for k in inside])[0]
        out[f"{DECADE}{low:.3g}-{low * 10:.3g}"] = slope
        low *= 10
    return out


def exponent_intervals(samples: list[dict]) -> dict[str, float]:
    """``{name@target=t: mean, name_low@target=t, name_high@target=t, seeds@target=t}`` over the sweep's seeds, for
    the three window exponents and each decade's (``decade_exponent@T=1-10@target=t``, ...)."""
    by_target: dict[str, list[dict]] = {}
    for row in samples:
        by_target.setdefault(row["args"]["target"], []).append(row["metrics"])
    out: dict[str, float] = {}
    for target, rows in sorted(by_target.items()):
        at = f"@target={target}"
        out[f"seeds{at}"] = float(len(rows))
        for name in EXPONENTS + tuple(k for k in rows[0] if k.startswith(DECADE)):
            interval = mean_ci([r[name] for r in rows])
            out.update({f"{name}{at}": interval.estimate, f"{name}_low{at}": interval.low})
            out[f"{name}_high{at}"] = interval.high
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="95% intervals over seeds of an ntk sweep record's exponents")
    parser.add_argument("record", type=Path, help="an ntk sweep record folder (with samples.jsonl)")
    parser.add_argument("--out", type=Path, required=True, help="folder for metrics.json and commands.txt")
    args = parser.parse_args(argv)
    path = args.record / "samples.jsonl"
    if not path.exists():
        print(f"error: {path} not found: give the folder of an ntk sweep record", file=sys.stderr)
        return 2
    result = exponent_intervals(read_jsonl(path))
    write_study(
        args.out, result, ["python -m harness.plugins.ntk.fit " + " ".join(argv if argv is not None else sys.argv[1:])]
    )
    for key, value in sorted(result.items()):
        print(f"{key}: {value:.4g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
