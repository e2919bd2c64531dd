"""Tables for the terminal and files, the leaderboard, and the PNG plots runs write."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

FORMATS = ("table", "csv", "json", "markdown")


def fmt_value(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def render(rows: list[dict], columns: list[str], fmt: str = "table") -> str:
    """Rows as an aligned text table, CSV, JSON or a Markdown table."""
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    cells = [[fmt_value(row.get(c)) for c in columns] for row in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells])
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def metric_rows(metrics: dict) -> list[dict]:
    """A flat metrics map as rows of (metric, value, stderr), folding each ``x_stderr`` into its ``x``."""
    rows = []
    for name, value in metrics.items():
        if name.endswith("_stderr") and name[: -len("_stderr")] in metrics:
            continue
        rows.append({"metric": name, "value": value, "stderr": metrics.get(f"{name}_stderr")})
    return rows


def leaderboard(runs: list[dict]) -> tuple[list[dict], list[str]]:
    """Models x tasks: the primary metric of each model's latest finished run of each task.

    Runs of a task whose ``variant_args`` differ (propane_transfer's ``source``) get a column each, ``task[k=v]``.
    """
    table: dict[str, dict] = {}
    tasks: list[str] = []
    for run in sorted(runs, key=lambda r: r["finished"] or 0):
        metric = run["primary_metric"]
        if run["status"] != "finished" or not metric or metric not in run["metrics"]:
            continue
        variant = f"[{run['variant']}]" if run.get("variant") else ""
        column = f"{run['task']}{variant}/{metric}"
        if column not in tasks:
            tasks.append(column)
        table.setdefault(run["model"], {"model": run["model"] or "(no model)"})[column] = run["metrics"][metric]
    return list(table.values()), ["model"] + tasks


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_lines(path: Path, series: dict, xlabel: str, ylabel: str, title: str = "", logx=False, logy=False,
               errors: dict | None = None) -> Path:
    """One line per label: ``series = {label: (xs, ys)}``, optional ``errors = {label: stderrs}`` as bands."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", markersize=3, label=label)
        if errors and label in errors:
            low = [y - e for y, e in zip(ys, errors[label])]
            high = [y + e for y, e in zip(ys, errors[label])]
            ax.fill_between(xs, low, high, alpha=0.2)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if len(series) > 1:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_heatmap(path: Path, matrix, row_labels, col_labels, xlabel: str, ylabel: str, title: str = "") -> Path:
    """A labelled heatmap with the value written in each cell."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(1 + 0.7 * len(col_labels), 1 + 0.5 * len(row_labels)))
    image = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1, aspect="auto", origin="lower")
    ax.set_xticks(range(len(col_labels)), [str(c) for c in col_labels])
    ax.set_yticks(range(len(row_labels)), [str(r) for r in row_labels])
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if value < 0.5 else "black")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
