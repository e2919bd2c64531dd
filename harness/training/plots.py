"""The trainer's logged series as PNG plots in its run folder: one plot per group of keys."""

from __future__ import annotations

from pathlib import Path


def group_series(records: list[dict]) -> dict[str, dict[str, tuple[list, list]]]:
    """Group logged keys into plots: ``probe/a/b/stat3`` goes to plot ``probe_stat`` as line ``a/b/3``.

    A key logged twice for a step (a resumed run re-logs the steps after its last checkpoint) keeps the last.
    """
    import re

    by_step: dict[str, dict[int, float]] = {}
    for record in records:
        for key, value in record.items():
            if key != "step" and isinstance(value, (int, float)):
                by_step.setdefault(key, {})[int(record["step"])] = float(value)
    plots: dict[str, dict[str, tuple[list, list]]] = {}
    for key, points in by_step.items():
        parts = key.split("/")
        stem, digits = re.fullmatch(r"(.*?)(\d*)", parts[-1]).groups()
        stem = stem or parts[-1]
        plot = "_".join([parts[0], stem]) if len(parts) > 1 else key
        label = "/".join(parts[1:-1] + ([digits] if digits and stem != parts[-1] else [])) or key
        steps = sorted(points)
        plots.setdefault(plot, {})[label] = (steps, [points[s] for s in steps])
    return plots


def plot_series(folder: Path, records: list[dict], max_lines: int = 16) -> list[Path]:
    """One PNG per group of :func:`group_series` in ``folder`` (at most ``max_lines`` lines each)."""
    from harness.report import plot_lines

    paths = []
    for plot, series in group_series(records).items():
        if plot in ("lr", "tokens_per_s"):
            continue
        shown = dict(list(series.items())[:max_lines])
        name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in plot)
        paths.append(plot_lines(Path(folder) / f"train_{name}.png", shown, xlabel="step", ylabel=plot, title=plot))
    return paths
