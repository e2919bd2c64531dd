"""Plots: singular-value shrinkage curves (closed forms and the trained network) and singular values over training."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from harness.report import figure
from harness.store import read_json

if TYPE_CHECKING:
    from harness.plugins.linear_resnet.task import LinearResNetOptions


def shrinkage_curves(y_max: float, mu: float, depth: int, lams: list[float], points: int = 400) -> dict:
    """Output singular value against input singular value y: ResNet(L, lambda) for each lambda, and soft threshold."""
    from harness.plugins.linear_resnet.theory import resnet_shrinkage, soft_threshold

    y = np.linspace(0.0, 1.05 * y_max, points)
    curves = {f"ResNet L={depth}, lambda={lam:g}": (y, resnet_shrinkage(y, mu, depth, lam)) for lam in lams}
    curves["nuclear norm (soft threshold)"] = (y, soft_threshold(y, mu))
    return curves


def plot_shrinkage(path, curves: dict, trained: dict, rank_points: tuple | None, title: str) -> None:
    """Closed-form curves as lines; ``trained = {label: (y, s)}`` as markers; the rank-constrained fit as crosses."""
    plt = figure()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    colors = {}
    for label, (y, s) in curves.items():
        style = "--" if label.startswith("nuclear") else "-"
        (line,) = ax.plot(y, s, style, lw=1.3, label=label, color="black" if style == "--" else None)
        colors[label] = line.get_color()
    for label, (y, s) in trained.items():
        ax.plot(y, s, "o", ms=5, mfc="none", color=colors.get(label), label=f"trained, {label.split(', ', 1)[-1]}")
    if rank_points is not None:
        ax.plot(*rank_points, "x", color="gray", ms=6, label="rank-constrained (truncated SVD)")
    y_max = max(float(np.max(y)) for y, _ in curves.values())
    ax.plot([0, y_max], [0, y_max], ":", color="gray", lw=0.8)
    ax.set(xlabel="singular value of Y", ylabel="singular value of the fit", title=title)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_run(ctx, spectra: dict, history: dict, net: LinearResNetOptions) -> None:
    """This run's shrinkage plot and its singular values over training."""
    from harness.report import plot_lines

    y = spectra["observed"]
    label = f"ResNet L={net.depth}, lambda={net.lam:g}"
    curves = shrinkage_curves(float(y[0]), net.mu, net.depth, [net.lam])
    plot_shrinkage(
        ctx.path("shrinkage.png"),
        curves,
        {label: (y, spectra["trained"])},
        (y, spectra["rank_constrained"]),
        f"mu={net.mu:g}: closed forms (lines), trained (circles)",
    )
    sv = np.array(history["sv"])  # (snapshots, dim)
    top = min(8, sv.shape[1])
    plot_lines(
        ctx.path("singular_values.png"),
        {f"sv{i}": (history["step"], sv[:, i].tolist()) for i in range(top)},
        "step",
        "singular value of B prod(I + W_l) A",
        title=label,
    )


def sweep_summary(points: list[dict], ctx) -> dict[str, float]:
    """One shrinkage figure per depth: every lambda's closed-form curve with its trained singular values."""

    by_depth: dict[int, list[dict]] = {}
    for point in points:
        if point["seed"] == points[0]["seed"]:  # one seed's points: the curves do not depend on the seed
            by_depth.setdefault(int(point["args"]["depth"]), []).append(point)
    for depth, group in by_depth.items():
        group.sort(key=lambda p: float(p["args"]["lam"]))
        fix = "delete that point's run folder to run it again"
        spectra = [read_json(p["dir"] / "spectra.json", fix) for p in group]
        lams = [float(p["args"]["lam"]) for p in group]
        mu = float(group[0]["args"]["mu"])
        y_max = max(s["observed"][0] for s in spectra)
        curves = shrinkage_curves(y_max, mu, depth, lams)
        trained = {f"ResNet L={depth}, lambda={lam:g}": (s["observed"], s["trained"]) for lam, s in zip(lams, spectra)}
        rank_points = (spectra[0]["observed"], spectra[0]["rank_constrained"])
        plot_shrinkage(
            ctx.path(f"shrinkage_L{depth}.png"),
            curves,
            trained,
            rank_points,
            f"depth L={depth}, mu={mu:g}: closed forms (lines), trained (circles)",
        )
    gaps = [float(p["metrics"]["theory_gap"]) for p in points if "theory_gap" in p["metrics"]]
    return {"max_theory_gap": max(gaps)} if gaps else {}
