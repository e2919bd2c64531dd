"""The two figures: a loss curve with the support coordinates' pick-up steps, and steps against d per target."""

from __future__ import annotations

import math
from pathlib import Path

from harness.report import save_figure


def plot_loss_curve(
    path: Path,
    steps: list[int],
    losses: list[list[float]],
    pickups: dict,
    threshold: float,
    title: str,
    coefficients: list[list[float]] | None = None,
    terms: list[str] = (),
) -> Path:
    """Left: held-out loss / E[f*^2] against online SGD steps (log x), one thin line per run and their mean.
    Right: the network's coefficient on each target term (the target's are 1). Both: a dotted vertical line at the
    mean (in log steps) step each support coordinate is picked up."""
    from harness.report import figure

    plt = figure()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for row in zip(*losses):
        axes[0].plot(steps, row, color="gray", linewidth=0.6, alpha=0.5)
    axes[0].plot(steps, [sum(r) / len(r) for r in losses], color="black", linewidth=1.5, label="mean over runs")
    axes[0].axhline(threshold, color="red", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    axes[0].set(ylabel="held-out MSE / E[f*^2]")
    if coefficients:
        for label, row in zip(terms, zip(*coefficients)):
            axes[1].plot(steps, row, linewidth=1.5, label=f"coefficient of {label}")
    axes[1].set(ylabel="E[f(x) term(x)] (held out, mean over runs)")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax in axes:
        for index, (coordinate, picked) in enumerate(sorted(pickups.items())):
            found = [math.log10(s) for s in picked if s > 0]
            if found:
                ax.axvline(
                    10 ** (sum(found) / len(found)),
                    color=colors[(index + 3) % len(colors)],
                    linestyle=":",
                    label=f"x{coordinate + 1} picked up",
                )
        ax.set(xscale="log", xlabel="online SGD steps (one sample each)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_steps_vs_d(path: Path, lines: dict, learned: str = "the loss threshold") -> Path:
    """Steps until learned (``learned`` names the criterion) against d on log-log axes, one line per target, with the
    fitted slope and the conjecture's slope (dashed, through the line's geometric centre)."""
    from harness.report import figure

    plt = figure()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for target, (ds, steps, slope, conjecture) in lines.items():
        line = ax.plot(ds, steps, marker="o", label=f"{target}: fitted {slope:.2f}, conjecture {conjecture}")
        cx = sum(map(math.log, ds)) / len(ds)
        cy = sum(map(math.log, steps)) / len(steps)
        ax.plot(
            ds,
            [math.exp(cy + conjecture * (math.log(d) - cx)) for d in ds],
            color=line[0].get_color(),
            linestyle="--",
            linewidth=1,
            alpha=0.7,
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="d",
        ylabel=f"online SGD steps to {learned}",
        title="leap: steps ~ d^max(Leap-1, 1)? (dashed: conjecture's slope)",
    )
    ax.grid(alpha=0.3, which="both")
    plain_ticks(ax, sorted({d for ds, *_ in lines.values() for d in ds}))
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_shape_residuals(path: Path, groups: dict, residuals) -> Path:
    """One panel per target: the residual (log10 steps) of each curve's fit of c d^k, c d^k ln d and c d^1.3, mean
    over curves at each d with a 95% t band; a form that fits leaves a flat band around 0, a wrong one a bend."""
    import numpy as np

    from harness.report import figure
    from harness.stats import mean_ci

    plt = figure()
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 4), squeeze=False)
    for ax, (target, group) in zip(axes[0], sorted(groups.items())):
        k = max(group["leap"] - 1, 1)
        labels = {"dk": f"c d^{k}", "dk_log": f"c d^{k} ln d", "d13": "c d^1.3"}
        per_curve = [residuals(group["d"], row, k) for row in group["curves"].values()]
        for name, label in labels.items():
            bands = [mean_ci([float(c[name][i]) for c in per_curve]) for i in range(len(group["d"]))]
            line = ax.plot(group["d"], [b.estimate for b in bands], marker="o", label=label)
            lows = np.nan_to_num([b.low for b in bands], nan=0.0)
            highs = np.nan_to_num([b.high for b in bands], nan=0.0)
            ax.fill_between(group["d"], lows, highs, color=line[0].get_color(), alpha=0.15)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set(xscale="log", xlabel="d", ylabel="log10 steps - fit", title=f"{target} ({len(per_curve)} curves)")
        plain_ticks(ax, group["d"])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def plain_ticks(ax, ds: list) -> None:
    """The grid's d values as the x ticks, written plainly (log axes otherwise label minor ticks over each other)."""
    from matplotlib.ticker import NullFormatter, NullLocator

    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(list(ds), [f"{d:g}" for d in ds])
