"""A sweep's metrics and plots: each point's metrics (the mean over seeds, with its stderr and a 95% CI when there
are several), a metric against a swept arg, and the task's own summary of its points."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from harness.errors import UsageError
from harness.sweep.executors import file_name
from harness.sweep.spec import Point, format_kv

if TYPE_CHECKING:
    from harness.sweep.plan import Sweep


def collect(sweep: Sweep, results: dict[str, dict], ctx, complete: bool) -> dict[str, float]:
    """``<metric>@<point>`` for every point (``<metric>`` alone when only seeds are swept): over several seeds the
    mean, its ``_stderr`` and the 95% t interval ``_ci_low`` / ``_ci_high`` (a training result is a distribution
    over seeds); over one, the run's own value and stderr. Then plots and the task's summary."""
    names = collected_metrics(sweep, results)
    metrics: dict[str, float] = {}
    groups: dict[str, list[Point]] = {}
    for point in sweep.points:
        groups.setdefault(point.key, []).append(point)
    for key, group in groups.items():
        for name in names:
            runs = [results[p.id]["metrics"] for p in group if p.id in results and name in results[p.id]["metrics"]]
            if runs:
                metrics.update(point_metrics(f"{name}@{key}" if key else name, name, runs, len(sweep.spec.seeds)))
    write_plots(sweep, names, metrics, ctx)
    summary = getattr(sweep.factory, "sweep_summary", None)
    if summary is not None and complete:
        points = [
            {
                "args": p.args,
                "seed": p.seed,
                "metrics": results[p.id]["metrics"],
                "run_id": results[p.id]["run_id"],
                "dir": results[p.id]["dir"],
            }
            for p in sweep.points
        ]
        metrics.update(summary(points, ctx) or {})
    return metrics


def point_metrics(label: str, name: str, runs: list[dict], seeds: int) -> dict[str, float]:
    """One point's value of metric ``name`` over its runs (one per seed)."""
    from harness.stats import mean_ci, mean_stderr

    if seeds < 2:
        stderr = runs[0].get(f"{name}_stderr")
        return {label: runs[0][name], **({f"{label}_stderr": stderr} if stderr is not None else {})}
    values = [float(m[name]) for m in runs]
    interval = mean_ci(values)
    return {
        label: interval.estimate,
        f"{label}_stderr": mean_stderr(values)[1],
        f"{label}_ci_low": interval.low,
        f"{label}_ci_high": interval.high,
    }


def collected_metrics(sweep: Sweep, results: dict[str, dict]) -> list[str]:
    """The metrics asked for (each must exist in some point), else the points' primary metrics."""
    available = dict.fromkeys(n for r in results.values() for n in r["metrics"] if not n.endswith("_stderr"))
    for name in sweep.spec.metrics:
        if results and name not in available:
            raise UsageError(
                f"metric '{name}' is in no point's metrics.json; choose from: {', '.join(list(available)[:20])}"
            )
    if sweep.spec.metrics:
        return list(sweep.spec.metrics)
    primary = dict.fromkeys(r["primary_metric"] for r in results.values() if r.get("primary_metric"))
    return list(primary) or list(available)


def write_plots(sweep: Sweep, names: list[str], metrics: dict, ctx) -> None:
    """Each plot: a metric against one swept arg, one line per combination of the other args, stderr bands."""
    from harness import report

    grid = sweep.spec.grid
    if not grid:
        return  # seeds alone: nothing to plot against
    first = next(iter(grid))
    for plot in sweep.spec.plots or [{"metric": name, "x": first} for name in names]:
        name, x = plot["metric"], plot["x"]
        values = grid[x]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        positions = values if numeric else list(range(len(values)))
        others = [k for k in grid if k != x]
        series, errors = {}, {}
        for combo in itertools.product(*(grid[k] for k in others)):
            fixed = dict(zip(others, combo))
            line = sorted(
                (pos, f"{name}@{format_kv({k: fixed.get(k, v) for k in grid})}") for pos, v in zip(positions, values)
            )
            line = [(pos, key) for pos, key in line if key in metrics]
            if line:
                label = format_kv(fixed) or name
                series[label] = ([pos for pos, _ in line], [metrics[key] for _, key in line])
                errors[label] = [metrics.get(f"{key}_stderr", 0.0) for _, key in line]
        if not series:
            continue
        xlabel = x if numeric else f"{x} ({', '.join(f'{i}={v}' for i, v in enumerate(values))})"
        title = f"{sweep.preset.name}, {sweep.model or 'no model'}" + (
            f", {len(sweep.spec.seeds)} seeds" if len(sweep.spec.seeds) > 1 else ""
        )
        report.plot_lines(
            ctx.path(f"{file_name(name)}_vs_{x}.png"),
            series,
            xlabel,
            name,
            title=title,
            logx=numeric and geometric(values),
            errors=errors,
        )


def geometric(values: list) -> bool:
    """Positive values with a roughly constant ratio > 1.5 between neighbours (16, 64, 256): plot on log x."""
    xs = sorted(values)
    if len(xs) < 3 or xs[0] <= 0:
        return False
    ratios = [b / a for a, b in zip(xs, xs[1:])]
    return min(ratios) > 1.5 and max(ratios) / min(ratios) < 1.3
