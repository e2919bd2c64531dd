"""The k_student x k_teacher summary of a moe_granularity sweep over ``teacher_k`` and ``k``: a heatmap of the
normalized MSE and the separation between students coarser than the teacher and those at or finer than it.

Separation, per teacher granularity k_t, is measured on each seed (each seed draws its own teacher and students)
and summarised over seeds as a geometric mean with a 95% t interval on the log ratios:
- ``separation@teacher_k=..``: the best coarser student's error over the worst at-or-finer student's error, the
  conservative gap (> 1 means every coarser student is worse than every finer one on that teacher);
- ``coarse_ratio@teacher_k=..``: the error of the student one step coarser (the largest k < k_t) over the error
  of the student at k_t, the gap at the boundary.

A sweep over ``k`` and ``steps`` against one teacher (preset moe_budget) gets the same boundary ratio per budget and
each student's gain from the longer budget (:func:`budget_summary`): whether the budget was enough.
"""

from __future__ import annotations

import math

from harness.report import save_figure
from harness.stats import mean_ci


def heatmap_summary(points: list[dict], ctx, metric: str = "normalized_mse") -> dict[str, float]:
    """Separation ratios per teacher granularity (with CIs over seeds) and the heatmap ``granularity_heatmap.png``."""
    runs = {(int(p["args"]["teacher_k"]), int(p["args"]["k"]), p["seed"]): p["metrics"][metric] for p in points}
    teachers = sorted({t for t, _, _ in runs})
    students = sorted({k for _, k, _ in runs})
    out: dict[str, float] = {}
    for t in teachers:
        coarse, fine = [k for k in students if k < t], [k for k in students if k >= t]
        if not coarse or not fine:
            continue
        seeds = sorted({s for tt, _, s in runs if tt == t})
        full = [s for s in seeds if all((t, k, s) in runs for k in students)]
        worst = [min(runs[t, k, s] for k in coarse) / max(runs[t, k, s] for k in fine) for s in full]
        boundary = [runs[t, max(coarse), s] / runs[t, t, s] for s in full if t in fine]
        out.update(geometric_summary(f"separation@teacher_k={t}", worst))
        out.update(geometric_summary(f"coarse_ratio@teacher_k={t}", boundary))
    matrix = [[cell_mean(runs, t, k) for k in students] for t in teachers]
    plot_heatmap(ctx.path("granularity_heatmap.png"), matrix, teachers, students)
    return out


def budget_summary(points: list[dict], metric: str = "normalized_mse") -> dict[str, float]:
    """A sweep over ``k`` and ``steps`` against one teacher: per budget, the boundary ratio (the largest coarser k
    over k_t), and per student, the error at the largest budget over the error at the smallest (< 1: still
    improving when the smaller budget ended); geometric means over seeds with 95% intervals."""
    t = int(points[0]["args"]["teacher_k"])
    runs = {(int(p["args"]["k"]), int(p["args"]["steps"]), p["seed"]): p["metrics"][metric] for p in points}
    students, budgets = sorted({k for k, _, _ in runs}), sorted({s for _, s, _ in runs})
    seeds = sorted({seed for _, _, seed in runs})
    coarse = [k for k in students if k < t]
    out: dict[str, float] = {}
    for steps in budgets:
        if coarse and t in students:
            pairs = [(runs.get((max(coarse), steps, s)), runs.get((t, steps, s))) for s in seeds]
            ratios = [a / b for a, b in pairs if a is not None and b]
            out.update(geometric_summary(f"coarse_ratio@steps={steps}", ratios))
    for k in students:
        pairs = [(runs.get((k, budgets[-1], s)), runs.get((k, budgets[0], s))) for s in seeds]
        out.update(geometric_summary(f"budget_gain@k={k}", [a / b for a, b in pairs if a is not None and b]))
    return out


def cell_mean(runs: dict, teacher_k: int, k: int) -> float:
    values = [v for (t, kk, _), v in runs.items() if t == teacher_k and kk == k]
    return sum(values) / len(values) if values else math.nan


def geometric_summary(label: str, ratios: list[float]) -> dict[str, float]:
    """The geometric mean of ratios and its 95% t interval (computed on the logs), with the number of seeds."""
    ratios = [r for r in ratios if r > 0]
    if not ratios:
        return {}
    interval = mean_ci([math.log(r) for r in ratios])
    out = {label: math.exp(interval.estimate), f"{label}_seeds": float(len(ratios))}
    if len(ratios) > 1:
        out[f"{label}_ci_low"], out[f"{label}_ci_high"] = math.exp(interval.low), math.exp(interval.high)
    return out


def plot_heatmap(path, matrix: list[list[float]], teachers: list[int], students: list[int]) -> None:
    """Rows: teacher granularity; columns: student granularity; colour: log normalized MSE (mean over seeds). The
    white staircase separates students coarser than the teacher (left of it) from the rest."""
    from matplotlib.colors import LogNorm

    from harness.report import figure

    plt = figure()
    values = [v for row in matrix for v in row if v == v and v > 0]
    fig, ax = plt.subplots(figsize=(1.6 + 0.8 * len(students), 1.2 + 0.6 * len(teachers)))
    image = ax.imshow(matrix, cmap="viridis", norm=LogNorm(min(values), max(values)), aspect="auto", origin="lower")
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if value == value:
                dark = math.log(value / min(values)) < 0.5 * math.log(max(values) / min(values))
                ax.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=8, color="white" if dark else "black")
        edge = sum(k < teachers[i] for k in students) - 0.5  # between the last coarser student and the teacher's k
        ax.plot([edge, edge], [i - 0.5, i + 0.5], color="white", linewidth=2)
    ax.set_xticks(range(len(students)), [str(k) for k in students])
    ax.set_yticks(range(len(teachers)), [str(t) for t in teachers])
    ax.set(
        xlabel="student granularity k", ylabel="teacher granularity k_t", title="normalized test MSE (mean over seeds)"
    )
    fig.colorbar(image, ax=ax)
    save_figure(fig, path)
