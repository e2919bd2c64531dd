"""``harness compare`` on sweeps: two sweeps, or two arms (metrics) of one sweep, paired by (point, seed).

A seed fixes what is random in a point's run (data, initialisation, sampling), so at one point the two sides' runs
of one seed share their draws and differ only by what the arms change: over K seeds each point gives K pairs. Per
metric and point: each side's mean over seeds with its t interval, the mean paired difference B - A with its t
interval, the sign-flip permutation p-value over seeds (exact: all 2^K flips up to 16 seeds) and Wilcoxon's
signed-rank p beside it. Seeds are few, so the interval is t's, not a bootstrap's (which cannot reach past the
handful of observed differences). Sweeps whose points or seeds differ are refused: their runs do not pair.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from harness import report, stats
from harness.errors import UsageError
from harness.store import read_jsonl
from harness.sweep.spec import format_kv

SUMMARY_SUFFIXES = ("_stderr", "_ci_low", "_ci_high")  # what a point reports about a metric, not a metric


def is_sweep(run: dict) -> bool:
    """Whether an index row is a sweep's run (its task is ``sweep:<preset>``)."""
    return str(run.get("task", "")).startswith("sweep:")


def point_records(run: dict) -> dict[tuple[str, int], dict]:
    """A sweep's finished points by (grid values, seed); refuses a sweep with a failed or missing point."""
    if not is_sweep(run):
        raise UsageError(
            f"run {run['run_id']} ({run['task']}) is not a sweep: compare two sweeps, one sweep with --arms, "
            "or two runs of one task"
        )
    out = {}
    for record in read_jsonl(Path(run["dir"]) / "samples.jsonl"):
        key = (format_kv(record.get("point") or {}), int(record.get("seed", 0)))
        if record.get("status") != "finished":
            raise UsageError(
                f"sweep {run['run_id']}: point '{record.get('id')}' did not finish; re-run the sweep's command "
                "(finished points are kept) and compare again"
            )
        out[key] = record["metrics"]
    if not out:
        raise UsageError(f"sweep {run['run_id']} has no point records (samples.jsonl): re-run the sweep")
    return out


def seeds_of(run: dict, keys) -> list[int]:
    """The sweep's seeds, each point with all of them; at least two (a paired test over one seed is none)."""
    seeds = sorted({seed for _, seed in keys})
    points = {point for point, _ in keys}
    if len(keys) != len(points) * len(seeds):
        raise UsageError(f"sweep {run['run_id']}: not every point ran every seed; re-run it with one --seeds list")
    if len(seeds) < 2:
        raise UsageError(
            f"sweep {run['run_id']} ran one seed per point: pairing over seeds needs at least two; "
            "re-run it with --seeds 0,1,2,3"
        )
    return seeds


def check_match(a: dict, b: dict, left: dict, right: dict) -> None:
    """Refuse two sweeps whose points or seeds differ, in one line that names the first difference."""
    seeds_a, seeds_b = seeds_of(a, left), seeds_of(b, right)
    if seeds_a != seeds_b:
        raise UsageError(
            f"sweeps {a['run_id']} and {b['run_id']} ran different seeds ({','.join(map(str, seeds_a))} vs "
            f"{','.join(map(str, seeds_b))}): re-run one with the other's --seeds"
        )
    points_a, points_b = (list(dict.fromkeys(p for p, _ in side)) for side in (left, right))
    only_a, only_b = [p for p in points_a if p not in points_b], [p for p in points_b if p not in points_a]
    if only_a or only_b:
        raise UsageError(
            f"sweeps {a['run_id']} and {b['run_id']} ran different points ({len(only_a)} only in A, {len(only_b)} "
            f"only in B, e.g. '{(only_a or only_b)[0]}'): re-run one with the other's --grid"
        )


def number(metrics: dict, name: str) -> float | None:
    value = metrics.get(name)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def shared_metrics(left: dict, right: dict, wanted: list[str] | None) -> list[str]:
    """The metrics every point of both sweeps reports as a number (or those asked for, each checked)."""
    records = [*left.values(), *right.values()]
    names = [
        n
        for n in dict.fromkeys(n for r in records for n in r)
        if not n.endswith(SUMMARY_SUFFIXES) and all(number(r, n) is not None for r in records)
    ]
    for name in wanted or ():
        if name not in names:
            raise UsageError(f"metric '{name}' is not in every point of both sweeps; choose from: {', '.join(names)}")
    return list(wanted) if wanted else names


def arm_metrics(run: dict, records: dict, arms: list[str]) -> None:
    """Refuse arms that are not metrics every point of the sweep reports."""
    if len(arms) != 2 or not all(arms) or arms[0] == arms[1]:
        raise UsageError(f"--arms {','.join(arms)}: give two metrics, e.g. --arms dfs/accuracy,path/accuracy")
    for arm in arms:
        if any(number(m, arm) is None for m in records.values()):
            names = [n for n in next(iter(records.values())) if not n.endswith(SUMMARY_SUFFIXES)]
            raise UsageError(
                f"--arms: '{arm}' is not a metric of every point of sweep {run['run_id']}; "
                f"choose from: {', '.join(names[:20])}"
            )


def paired_row(xs: list[float], ys: list[float], confidence: float, resamples: int, seed: int) -> dict:
    """One metric at one point over seeds: both means, the paired difference, the sign-flip and Wilcoxon tests."""
    row: dict = {"n": len(xs), "test": "permutation"}
    for key, values in (("a", xs), ("b", ys)):
        ci = stats.mean_ci(values, confidence)
        row[f"mean_{key}"], row[f"ci_{key}"] = ci.estimate, [ci.low, ci.high]
    difference = stats.mean_ci([y - x for x, y in zip(xs, ys)], confidence)
    row["difference"], row["difference_ci"] = difference.estimate, [difference.low, difference.high]
    row["p_value"] = stats.paired_permutation_test(xs, ys, resamples, seed)
    row["exact"] = len(xs) <= stats.EXACT_FLIPS
    row["p_wilcoxon"] = stats.wilcoxon_test(xs, ys)
    row["a_values"], row["b_values"] = xs, ys
    return row


def compare_sweeps(
    a: dict,
    b: dict | None,
    arms: list[str] | None = None,
    metrics: list[str] | None = None,
    confidence: float = stats.CONFIDENCE,
    resamples: int = stats.RESAMPLES,
    seed: int = 0,
) -> dict:
    """Two sweeps (``b``), or two arms of sweep ``a`` (``arms``), paired by (point, seed): a JSON-ready dict."""
    left = point_records(a)
    if arms:
        right = left
        arm_metrics(a, left, arms)
        pairs = [(f"{arms[1]} - {arms[0]}", arms[0], arms[1])]
        seeds = seeds_of(a, left)
    else:
        right = point_records(b)
        check_match(a, b, left, right)
        seeds = seeds_of(a, left)
        pairs = [(name, name, name) for name in shared_metrics(left, right, metrics)]
    points = list(dict.fromkeys(point for point, _ in left))
    rows = []
    for label, metric_a, metric_b in pairs:
        for point in points:
            xs = [number(left[(point, s)], metric_a) for s in seeds]
            ys = [number(right[(point, s)], metric_b) for s in seeds]
            row = {"metric": label, "metric_a": metric_a, "metric_b": metric_b, "point": point}
            rows.append(row | paired_row(xs, ys, confidence, resamples, seed))
    side = ("run_id", "task", "model", "model_args")
    return {
        "mode": "arms" if arms else "sweeps",
        "a": {k: a.get(k) for k in side} | {"arm": arms[0] if arms else None},
        "b": {k: (b or a).get(k) for k in side} | {"arm": arms[1] if arms else None},
        "points": len(points),
        "seeds": seeds,
        "confidence": confidence,
        "paired": rows,
    }


def _interval(mean: float, ci: list) -> str:
    bounds = f" [{report.fmt_value(ci[0])}, {report.fmt_value(ci[1])}]" if not math.isnan(ci[0]) else ""
    return report.fmt_value(mean) + bounds


def render(result: dict, fmt: str) -> str:
    """The comparison as text: JSON only for ``json``; the paired rows as CSV for ``csv`` (intervals as two
    columns, the per-seed values left out)."""
    paired = result["paired"]
    if fmt == "json":
        plain = {**result, "paired": [{k: report.json_safe(v) for k, v in row.items()} for row in paired]}
        return json.dumps(plain, indent=2, default=str)
    if fmt == "csv":
        rows = []
        for row in paired:
            flat = {k: v for k, v in row.items() if not isinstance(v, list)}
            for key in ("ci_a", "ci_b", "difference_ci"):
                flat[f"{key}_low"], flat[f"{key}_high"] = row[key]
            rows.append(flat)
        return report.render(rows, list(dict.fromkeys(k for r in rows for k in r)), "csv")
    lines = []
    for key in ("a", "b"):
        run = result[key]
        arm = f", arm {run['arm']}" if run["arm"] else ""
        lines.append(f"{key.upper()}: {run['run_id']} ({run['task']}, {report.model_label(run)}{arm})")
    k = len(result["seeds"])
    flips = f"exact over 2^{k} sign flips" if k <= stats.EXACT_FLIPS else "sign flips sampled"
    lines.append(
        f"\npaired by (point, seed): {result['points']} point(s) x {k} seeds ({','.join(map(str, result['seeds']))});"
        f" means over seeds with {result['confidence']:.0%} t CIs; B - A per seed, p: permutation ({flips})\n"
    )
    columns = ["metric", "point", "A", "B", "B - A", "p", "Wilcoxon p"]
    if not any(row["point"] for row in paired):
        columns.remove("point")  # seeds alone: one point, no grid values
    rows = [
        {
            "metric": row["metric"],
            "point": row["point"],
            "A": _interval(row["mean_a"], row["ci_a"]),
            "B": _interval(row["mean_b"], row["ci_b"]),
            "B - A": _interval(row["difference"], row["difference_ci"]),
            "p": row["p_value"],
            "Wilcoxon p": row["p_wilcoxon"],
        }
        for row in paired
    ]
    lines.append(report.render(rows, columns, fmt))
    return "\n".join(lines)
