"""The two figures: a loss curve with the support coordinates' pick-up steps, and steps against d per target."""

from __future__ import annotations

import math
from pathlib import Path


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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_steps_vs_d(path: Path, lines: dict) -> Path:
    """Steps to the threshold against d on log-log axes, one line per target, with the fitted slope and the
    conjecture's slope (dashed, through the line's geometric centre)."""
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
        ylabel="online SGD steps to the loss threshold",
        title="leap: steps ~ d^max(Leap-1, 1)? (dashed: conjecture's slope)",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
