"""The two figures: the sup gap against T for every alpha, and the alpha needed against T with its fit."""

from __future__ import annotations

import math
from pathlib import Path

from harness.report import save_figure


def plot_deviations(
    path: Path, times: list[float], alphas: list[float], result: dict, epsilon: float, target: str
) -> Path:
    """Left: sup_{t<=T} prediction gap; right: sup_{t<=T} alpha ||w - w_lin||; one line per alpha. The gap is on
    held-out inputs, except for the tight construction, which measures it on its training outputs (tight.py)."""
    from harness.report import figure

    plt = figure()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    measured_on = "training outputs" if target == "tight" else "held out"
    for ax, kind, label in (
        (axes[0], "pred", f"sup$_{{t\\leq T}}$ RMS gap of predictions ({measured_on})"),
        (axes[1], "param", "sup$_{t\\leq T}$ $\\alpha\\,\\|w - w_{lin}\\|$"),
    ):
        for alpha, row in zip(alphas, result[kind]):
            ax.plot(times, row, marker="o", markersize=3, label=f"alpha={alpha:g}")
        if kind == "pred":
            ax.axhline(epsilon, color="black", linestyle="--", linewidth=1, label=f"epsilon={epsilon:g}")
        ax.set(xscale="log", yscale="log", xlabel="T (kernel time, 1/lambda_max)", ylabel=label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"ntk: model vs its linearisation, target={target}")
    return save_figure(fig, path)


def plot_alpha_needed(path: Path, series: dict, slopes: dict, epsilon: float) -> Path:
    """Left: alpha needed against T on log-log axes, one line per label, with slope-1 (this paper) and slope-2
    (Chizat et al.) references through each line's first point. Right: alpha needed / T, each line divided by its
    first point: flat where the local exponent is 1, rising where it is above."""
    from harness.report import figure

    plt = figure()
    fig, (ax, flat) = plt.subplots(1, 2, figsize=(11, 4.5))
    for label, (times, needed) in series.items():
        line = ax.plot(times, needed, marker="o", markersize=4, label=f"{label}: fitted slope {slopes[label]:.2f}")
        finite = [(t, a) for t, a in zip(times, needed) if math.isfinite(a)]
        if finite:
            t0, a0 = finite[0]
            ends = [t0, finite[-1][0]]
            color = line[0].get_color()
            ax.plot(ends, [a0 * (t / t0) for t in ends], color=color, linestyle="--", linewidth=1, alpha=0.6)
            ax.plot(ends, [a0 * (t / t0) ** 2 for t in ends], color=color, linestyle=":", linewidth=1, alpha=0.6)
            flat.plot([t for t, _ in finite], [a / t / (a0 / t0) for t, a in finite], marker="o", markersize=4)
            flat.plot([], [], color=color, label=label)
    ax.plot([], [], color="gray", linestyle="--", label="slope 1: alpha = O(T) (this paper)")
    ax.plot([], [], color="gray", linestyle=":", label="slope 2: alpha = O(T^2) (Chizat et al.)")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="T (kernel time, 1/lambda_max)",
        ylabel=f"alpha needed for sup gap <= {epsilon:g}",
        title="ntk: alpha needed to stay linear until T",
    )
    flat.set(
        xscale="log",
        yscale="log",
        xlabel="T (kernel time, 1/lambda_max)",
        ylabel="(alpha needed / T) / its value at the first T",
        title="flat: exponent 1; rising: above 1",
    )
    for axis in (ax, flat):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    return save_figure(fig, path)
