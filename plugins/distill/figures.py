"""The beam-width figure of a distill sweep over beam widths: the distilled tree's agreement with the network
against the beam width, one panel per depth r, one line per target family with its 95% t interval over seeds
(clipped to [0, 1]), and CART at the same queries as a dashed line (CART never sees the beam: one value per
family)."""

from __future__ import annotations

import math
from pathlib import Path


def beam_curve(points: list[dict], path: Path) -> Path:
    """Draw ``path`` from the sweep's points (each with ``args``, ``seed`` and ``metrics``); d is one value."""
    from harness import report
    from harness.stats import mean_ci

    plt = report.figure()
    depths = sorted({int(p["args"]["r"]) for p in points})
    families = sorted({str(p["args"].get("family", "opposite")) for p in points}, reverse=True)
    beams = sorted({int(p["args"]["beam"]) for p in points})
    fig, axes = plt.subplots(1, len(depths), figsize=(5 * len(depths), 4), sharey=True, squeeze=False)
    for ax, r in zip(axes[0], depths):
        for index, family in enumerate(families):
            color = f"C{index}"
            runs = [p for p in points if int(p["args"]["r"]) == r and p["args"].get("family", "opposite") == family]
            means, below, above = [], [], []
            for beam in beams:
                interval = mean_ci([p["metrics"]["agreement"] for p in runs if int(p["args"]["beam"]) == beam])
                one_seed = math.isnan(interval.low)  # no interval: no bar
                means.append(interval.estimate)
                below.append(0.0 if one_seed else interval.estimate - max(interval.low, 0.0))
                above.append(0.0 if one_seed else min(interval.high, 1.0) - interval.estimate)  # agreement <= 1
            label = f"distilled, {family}"
            ax.errorbar(beams, means, yerr=[below, above], color=color, marker="o", capsize=3, label=label)
            cart = mean_ci([p["metrics"]["baseline_agreement"] for p in runs]).estimate
            ax.axhline(cart, color=color, linestyle="--", label=f"CART, {family}")
        ax.set_xscale("log")
        ax.set_xticks(beams, [str(b) for b in beams])
        ax.set(xlabel="beam width", title=f"r = {r}, d = {points[0]['args']['d']}")
    axes[0][0].set_ylabel("agreement with the network")
    seeds = len({p["seed"] for p in points})
    fig.suptitle(f"mean over {seeds} seeds (target trees); bars: 95% t interval, clipped to [0, 1]", fontsize=9)
    axes[0][-1].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
