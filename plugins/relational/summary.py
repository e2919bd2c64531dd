"""From a sweep of relational runs to the paper's two figures.

Points are grouped by every task argument except ``n`` (one group = one model, e.g. ``attention=identity`` or
``attention=sdpa,d_model=128``); seeds of a point are averaged (mean and stderr). For each group the summary reports
the smallest n whose mean test accuracy reaches 0.9 (``n_to_0.9``) and, in the next-token setting, the smallest n
whose mean test error is at most 0.05 (``n_to_error_0.05``). A threshold not reached within the swept n is written
as ``inf``. The sweep itself plots the point metrics against n (the preset's ``plots``); this adds, when the sweep
varies ``d_model``, the n needed against the embedding dimension, one line per attention type, and the test error
against the dimension at each fixed n.
"""

from __future__ import annotations

import math
from collections import defaultdict

from harness.evaluation import mean_stderr

ACCURACY_THRESHOLD = 0.9
ERROR_THRESHOLD = 0.05


def curves(points: list[dict]) -> dict[tuple, dict[int, dict[str, tuple[float, float]]]]:
    """group key -> n -> metric -> (mean, stderr) over seeds; the key is the sorted (arg, value) pairs but n."""
    values: dict[tuple, dict[int, dict[str, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for point in points:
        key = tuple(sorted((k, v) for k, v in point["args"].items() if k != "n"))
        for metric in ("test_accuracy", "test_error", "test_loss"):
            if metric in point["metrics"]:
                values[key][int(point["args"]["n"])][metric].append(float(point["metrics"][metric]))
    return {
        key: {n: {m: mean_stderr(v) for m, v in by_metric.items()} for n, by_metric in sorted(by_n.items())}
        for key, by_n in values.items()
    }


def first_n(curve: dict[int, dict[str, tuple[float, float]]], metric: str, passes) -> float:
    """The smallest n whose mean ``metric`` passes, or inf."""
    for n, metrics in curve.items():
        if metric in metrics and passes(metrics[metric][0]):
            return float(n)
    return math.inf


def varying(keys: list[tuple]) -> list[str]:
    """The argument names whose value differs between groups (they name the groups)."""
    names = sorted({k for key in keys for k, _ in key})
    return [name for name in names if len({dict(key).get(name) for key in keys}) > 1]


def label(key: tuple, names: list[str]) -> str:
    args = dict(key)
    return ",".join(f"{name}={args.get(name)}" for name in names) or "all"


def summarize(points: list[dict], ctx) -> dict[str, float]:
    groups = curves(points)
    names = varying(list(groups))
    metrics = {}
    for key, curve in groups.items():
        suffix = f"@{label(key, names)}" if names else ""
        metrics[f"n_to_{ACCURACY_THRESHOLD}{suffix}"] = first_n(
            curve, "test_accuracy", lambda v: v >= ACCURACY_THRESHOLD
        )
        if dict(key).get("setting") == "next_token":
            metrics[f"n_to_error_{ERROR_THRESHOLD}{suffix}"] = first_n(
                curve, "test_error", lambda v: v <= ERROR_THRESHOLD
            )
        largest = max(curve)
        metrics[f"test_accuracy_at_max_n{suffix}"] = curve[largest]["test_accuracy"][0]
    if "d_model" in names:
        plot_against_dimension(groups, names, ctx)
    return metrics


def plot_against_dimension(groups: dict, names: list[str], ctx) -> None:
    """n needed to reach test error <= 0.05 against d_model, one line per value of the other varying args."""
    from harness.report import plot_lines

    others = [name for name in names if name != "d_model"]
    lines: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for key, curve in groups.items():
        needed = first_n(curve, "test_error", lambda v: v <= ERROR_THRESHOLD)
        if math.isfinite(needed):  # an n never reached has no point; the metrics say inf
            lines[label(key, others)].append((int(dict(key)["d_model"]), needed))
    series = {name: ([d for d, _ in sorted(pts)], [n for _, n in sorted(pts)]) for name, pts in sorted(lines.items())}
    largest = max(n for curve in groups.values() for n in curve)
    plot_lines(
        ctx.path("n_needed_vs_dimension.png"),
        series,
        xlabel="embedding dimension d_model",
        ylabel=f"n to reach test error <= {ERROR_THRESHOLD}",
        logx=True,
        logy=True,
        title=f"data needed against dimension (missing: not reached by n={largest})",
    )
    by_n: dict[str, list[tuple[int, float]]] = defaultdict(list)  # the same law read at fixed n
    for key, curve in groups.items():
        for n, values in curve.items():
            if "test_error" in values:
                by_n[f"{label(key, others)},n={n}"].append((int(dict(key)["d_model"]), values["test_error"][0]))
    series = {name: ([d for d, _ in sorted(pts)], [e for _, e in sorted(pts)]) for name, pts in sorted(by_n.items())}
    plot_lines(
        ctx.path("test_error_vs_dimension.png"),
        series,
        xlabel="embedding dimension d_model",
        ylabel="test error (unseen symbols)",
        logx=True,
        title="test error against dimension at fixed n",
    )
