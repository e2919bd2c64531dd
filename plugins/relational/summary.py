"""From a sweep of relational runs to the paper's two figures.

Points are grouped by every task argument except ``n`` (one group = one model, e.g. ``attention=identity`` or
``attention=sdpa,d_model=128``); seeds of a point are averaged (mean and stderr). For each group the summary reports
the smallest n whose mean test accuracy reaches 0.9 (``n_to_0.9``) and the paper's metric, the smallest n whose
mean test loss is at most 0.01 (``n_to_loss_0.01``); in the next-token setting also the smallest n whose mean test
error is at most 0.05 (``n_to_error_0.05``). A threshold not reached within the swept n is written as ``inf``.
The paper states the 0.01 criterion for claim (ii), where the loss is cross-entropy; for the regression setting of
claim (i) this applies the same number to the test MSE against the +-1 labels (our choice: MSE 0.01 is an output
within about 0.1 of its label on average, so it asks for more than the sign that accuracy reads).

Over several seeds the n needed is also read seed by seed, for the loss threshold and for accuracy 0.9:
``n_to_loss_0.01_reached`` (``n_to_0.9_reached``) counts the seeds whose own curve reaches it, and when all do,
``n_to_loss_0.01_geomean`` (``n_to_0.9_geomean``) is the geometric mean of their n with the 95% t interval of
log2 n (``_ci_low`` / ``_ci_high``): the grid doubles n, so seeds differ by factors, not sums.

The sweep itself plots the point metrics against n (the preset's ``plots``); this adds, when the sweep varies
``d_model``, the n needed against the embedding dimension (one line per attention type), the test error against
the dimension at each fixed n, and the test loss against n on a log scale, one panel per attention type; and
otherwise (claim (i)) test accuracy and test loss against n on log axes, one line per model, with 95% t bands over
seeds and the two thresholds drawn.
"""

from __future__ import annotations

import math
from collections import defaultdict

from harness.evaluation import mean_stderr

ACCURACY_THRESHOLD = 0.9
ERROR_THRESHOLD = 0.05
LOSS_THRESHOLD = 0.01  # the paper's criterion for claim (ii): the n needed to reach test loss 0.01
METRICS = ("test_accuracy", "test_error", "test_loss")


def by_seed(points: list[dict]) -> dict[tuple, dict[int, dict[int, dict[str, float]]]]:
    """group key -> seed -> n -> metric; the key is the sorted (arg, value) pairs but n."""
    values: dict[tuple, dict[int, dict[int, dict[str, float]]]] = defaultdict(lambda: defaultdict(dict))
    for point in points:
        key = tuple(sorted((k, v) for k, v in point["args"].items() if k != "n"))
        found = {m: float(point["metrics"][m]) for m in METRICS if m in point["metrics"]}
        values[key][int(point.get("seed") or 0)][int(point["args"]["n"])] = found
    return values


def curves(points: list[dict]) -> dict[tuple, dict[int, dict[str, tuple[float, float]]]]:
    """group key -> n -> metric -> (mean, stderr) over seeds."""
    out = {}
    for key, seeds in by_seed(points).items():
        pooled: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for curve in seeds.values():
            for n, found in curve.items():
                for metric, value in found.items():
                    pooled[n][metric].append(value)
        out[key] = {n: {m: mean_stderr(v) for m, v in pooled[n].items()} for n in sorted(pooled)}
    return out


def first_n(curve: dict[int, dict], metric: str, passes) -> float:
    """The smallest n whose ``metric`` passes, or inf (values are (mean, stderr) pairs or plain floats)."""
    for n in sorted(curve):
        value = curve[n].get(metric)
        if value is not None and passes(value[0] if isinstance(value, tuple) else value):
            return float(n)
    return math.inf


def varying(keys: list[tuple]) -> list[str]:
    """The argument names whose value differs between groups (they name the groups)."""
    names = sorted({k for key in keys for k, _ in key})
    return [name for name in names if len({dict(key).get(name) for key in keys}) > 1]


def label(key: tuple, names: list[str]) -> str:
    args = dict(key)
    return ",".join(f"{name}={args.get(name)}" for name in names) or "all"


def seedwise(
    seeds: dict[int, dict[int, dict[str, float]]], suffix: str, name: str, metric: str, passes
) -> dict[str, float]:
    """Per seed, the n whose ``metric`` passes; their count (``<name>_reached``) and, when all seeds reach it, the
    geometric mean of their n with the 95% t interval of log2 n (``<name>_geomean``)."""
    from harness.stats import mean_ci

    needed = [first_n(curve, metric, passes) for curve in seeds.values()]
    reached = [n for n in needed if math.isfinite(n)]
    out = {f"{name}_reached{suffix}": float(len(reached))}
    if len(needed) < 2:
        return out
    if len(reached) < len(needed):
        out[f"{name}_geomean{suffix}"] = math.inf
        return out
    interval = mean_ci([math.log2(n) for n in reached])
    out[f"{name}_geomean{suffix}"] = 2.0**interval.estimate
    out[f"{name}_geomean{suffix}_ci_low"] = 2.0**interval.low
    out[f"{name}_geomean{suffix}_ci_high"] = 2.0**interval.high
    return out


def summarize(points: list[dict], ctx) -> dict[str, float]:
    groups = curves(points)
    seeds = by_seed(points)
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
        if any("test_loss" in values for values in curve.values()):
            metrics[f"n_to_loss_{LOSS_THRESHOLD}{suffix}"] = first_n(curve, "test_loss", lambda v: v <= LOSS_THRESHOLD)
            metrics.update(
                seedwise(seeds[key], suffix, f"n_to_loss_{LOSS_THRESHOLD}", "test_loss", lambda v: v <= LOSS_THRESHOLD)
            )
        metrics.update(
            seedwise(
                seeds[key], suffix, f"n_to_{ACCURACY_THRESHOLD}", "test_accuracy", lambda v: v >= ACCURACY_THRESHOLD
            )
        )
        largest = max(curve)
        metrics[f"test_accuracy_at_max_n{suffix}"] = curve[largest]["test_accuracy"][0]
    if "d_model" in names:
        plot_against_dimension(groups, names, ctx)
        plot_loss_panels(groups, names, ctx)
    elif names:
        plot_accuracy_and_loss(seeds, names, ctx)
    return metrics


def plot_against_dimension(groups: dict, names: list[str], ctx) -> None:
    """n needed (test loss <= 0.01 and test error <= 0.05) against d_model; test error against d_model at fixed n."""
    from harness.report import plot_lines

    others = [name for name in names if name != "d_model"]
    lines: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for key, curve in groups.items():
        d = int(dict(key)["d_model"])
        for criterion, metric, passes in (
            (f"loss<={LOSS_THRESHOLD}", "test_loss", lambda v: v <= LOSS_THRESHOLD),
            (f"error<={ERROR_THRESHOLD}", "test_error", lambda v: v <= ERROR_THRESHOLD),
        ):
            needed = first_n(curve, metric, passes)
            if math.isfinite(needed):  # an n never reached has no point; the metrics say inf
                lines[f"{label(key, others)}, {criterion}"].append((d, needed))
    series = {name: ([d for d, _ in sorted(pts)], [n for _, n in sorted(pts)]) for name, pts in sorted(lines.items())}
    largest = max(n for curve in groups.values() for n in curve)
    plot_lines(
        ctx.path("n_needed_vs_dimension.png"),
        series,
        xlabel="embedding dimension d_model",
        ylabel="n needed (mean over seeds)",
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


def plot_loss_panels(groups: dict, names: list[str], ctx) -> None:
    """Test loss against n on log-log axes, one panel per value of the other varying args, one line per d_model,
    with the band mean ± stderr over seeds and the paper's threshold as a dashed line."""
    from harness.report import figure

    others = [name for name in names if name != "d_model"]
    panels: dict[str, dict[int, dict]] = defaultdict(dict)
    for key, curve in groups.items():
        panels[label(key, others)][int(dict(key)["d_model"])] = curve
    plt = figure()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), sharey=True, squeeze=False)
    for ax, (title, by_d) in zip(axes[0], sorted(panels.items())):
        for d, curve in sorted(by_d.items()):
            ns = [n for n in curve if "test_loss" in curve[n]]
            means = [curve[n]["test_loss"][0] for n in ns]
            errs = [curve[n]["test_loss"][1] for n in ns]
            ax.plot(ns, means, marker="o", markersize=3, label=f"d_model={d}")
            low = [max(m - e, 1e-6) for m, e in zip(means, errs)]
            ax.fill_between(ns, low, [m + e for m, e in zip(means, errs)], alpha=0.2)
        ax.axhline(LOSS_THRESHOLD, color="gray", linestyle="--", linewidth=1)
        ax.set(xscale="log", yscale="log", xlabel="n (training examples = training symbols)", title=title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("test loss on unseen symbols")
    fig.tight_layout()
    fig.savefig(ctx.path("test_loss_vs_n_by_dimension.png"), dpi=110)
    plt.close(fig)


def plot_accuracy_and_loss(seeds: dict, names: list[str], ctx) -> None:
    """Claim (i) in one figure: test accuracy (left) and test loss (right, log scale) against n on a log axis, one
    line per model, the band the 95% t interval over seeds, the thresholds (accuracy 0.9, loss 0.01) dashed. A loss
    band's lower end below zero (or far below the smallest mean) is cut at a tenth of the smallest mean loss."""
    from matplotlib.ticker import NullLocator

    from harness.report import figure
    from harness.stats import mean_ci

    cells: dict[tuple, dict[str, list[tuple[int, object]]]] = {}
    for key, by_seed_curve in sorted(seeds.items()):
        ns = sorted({n for curve in by_seed_curve.values() for n in curve})
        cells[key] = {
            metric: [(n, mean_ci([c[n][metric] for c in by_seed_curve.values() if metric in c.get(n, {})])) for n in ns]
            for metric in ("test_accuracy", "test_loss")
        }
    losses = [c.estimate for by in cells.values() for _, c in by["test_loss"] if c.estimate > 0]
    floor = min(losses) / 10 if losses else 1e-6
    plt = figure()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key, by_metric in cells.items():
        for ax, (metric, found) in zip(axes, by_metric.items()):
            kept = [(n, c) for n, c in found if not math.isnan(c.estimate)]
            if not kept:
                continue
            xs = [n for n, _ in kept]
            ys = [max(c.estimate, floor) if metric == "test_loss" else c.estimate for _, c in kept]
            line = ax.plot(xs, ys, marker="o", markersize=3, label=label(key, names))[0]
            if all(not math.isnan(c.low) for _, c in kept):
                low = [max(c.low, floor) if metric == "test_loss" else c.low for _, c in kept]
                ax.fill_between(xs, low, [c.high for _, c in kept], alpha=0.2, color=line.get_color())
    axes[0].axhline(ACCURACY_THRESHOLD, color="gray", linestyle="--", linewidth=1)
    axes[1].axhline(LOSS_THRESHOLD, color="gray", linestyle="--", linewidth=1)
    axes[0].set(ylabel="test accuracy (unseen symbols)", ylim=(0.4, 1.02))
    axes[1].set(yscale="log", ylabel="test loss (unseen symbols)", ylim=(floor, None))
    grid = sorted({n for by in cells.values() for n, _ in by["test_accuracy"]})
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(grid, [str(n) for n in grid])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("n (training examples = training symbols)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    count = max(len(s) for s in seeds.values())
    fig.suptitle(f"claim (i): mean over {count} seeds, band: 95% t interval")
    fig.tight_layout()
    fig.savefig(ctx.path("accuracy_and_loss_vs_n.png"), dpi=110)
    plt.close(fig)
