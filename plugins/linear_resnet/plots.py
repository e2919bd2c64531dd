"""Plots: singular-value shrinkage curves (closed forms and the trained network) and singular values over training."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from harness.report import figure, save_figure
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
    save_figure(fig, path)


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


def relu_summary(points: list[dict], ctx) -> dict[str, float]:
    """Per depth: the ReLU ResNet's Jacobian spectrum (solid) and the linear closed form's (dashed) per lambda,
    first seed; and the Jacobian rank against lambda, every seed, beside the linear closed form's rank."""
    plt = figure()
    first = points[0]["seed"]
    depths = sorted({int(p["args"]["depth"]) for p in points})
    fig, axes = plt.subplots(1, len(depths) + 1, figsize=(4.2 * (len(depths) + 1), 3.8))
    for ax, depth in zip(axes, depths):
        chosen = [p for p in points if int(p["args"]["depth"]) == depth and p["seed"] == first]
        for i, point in enumerate(sorted(chosen, key=lambda p: float(p["args"]["lam"]))):
            path = point["dir"] / "spectra.json"
            if not path.exists():
                continue
            spectra = read_json(path, "delete that point's run folder to run it again")
            top = spectra["jacobian"][0]
            k = np.arange(1, len(spectra["jacobian"]) + 1)
            lam = float(point["args"]["lam"])
            ax.plot(k, np.array(spectra["jacobian"]) / top, "o-", color=f"C{i}", ms=3, label=f"lambda={lam:g}")
            linear = np.array(spectra["linear"])
            ax.plot(k, linear / max(linear[0], 1e-12), "--", color=f"C{i}", lw=1)
        ax.set(yscale="log", ylim=(1e-4, 1.5), xlabel="k", ylabel="singular value / largest")
        ax.set_title(f"L={depth}: ReLU Jacobian (solid), linear closed form (dashed)", fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    ax = axes[-1]
    for j, depth in enumerate(depths):
        chosen = [p for p in points if int(p["args"]["depth"]) == depth and "jacobian_rank" in p["metrics"]]
        lams = np.array([float(p["args"]["lam"]) for p in chosen])
        ax.scatter(lams * (1 + 0.04 * j), [p["metrics"]["jacobian_rank"] for p in chosen], color=f"C{j}", s=14)
        by_lam = sorted({(float(p["args"]["lam"]), p["metrics"]["linear_rank"]) for p in chosen if p["seed"] == first})
        ax.plot(*zip(*by_lam), "--", color=f"C{j}", label=f"L={depth}: linear closed form")
        ax.scatter([], [], color=f"C{j}", s=14, label=f"L={depth}: ReLU Jacobian rank (each seed)")
    ax.set(xscale="log", xlabel="lambda", ylabel="rank (values > 1% of the largest)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(ctx.path("relu_jacobian_rank.png"), dpi=110)
    plt.close(fig)
    return {}
