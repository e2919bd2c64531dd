"""Tables for the terminal and files, the leaderboard, and the PNG plots runs write."""

from __future__ import annotations

import csv
import inspect
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

FORMATS = ("table", "csv", "json", "markdown")


def fmt_value(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def render(rows: list[dict], columns: list[str], fmt: str = "table", width: int | None = None) -> str:
    """Rows as an aligned text table, CSV, JSON or a Markdown table. ``width``: a table's last column (a
    description) wraps so that each line fits that many characters."""
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
    if width is not None:
        cells, widths = _wrap_last(cells, widths, width)
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def _wrap_last(cells: list[list[str]], widths: list[int], width: int) -> tuple[list[list[str]], list[int]]:
    """Wrap the last column into the room the others leave (at least 20 characters), continuation lines indented
    under it, so a terminal shows one aligned table instead of lines hundreds of characters long."""
    import textwrap

    room = max(20, width - sum(widths[:-1]) - 2 * (len(widths) - 1))
    if widths[-1] <= room:
        return cells, widths
    wrapped = []
    for row in cells:
        pieces = textwrap.wrap(row[-1], room) or [""]
        wrapped.append(row[:-1] + [pieces[0]])
        wrapped += [[""] * (len(row) - 1) + [piece] for piece in pieces[1:]]
    return wrapped, widths[:-1] + [room]


def terminal_width() -> int | None:
    """The terminal's width when printing to one (or $COLUMNS is set); None for a pipe, so grep sees whole rows."""
    import os
    import shutil
    import sys

    if "COLUMNS" in os.environ or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def metric_rows(metrics: dict) -> list[dict]:
    """A flat metrics map as rows of (metric, value, stderr), folding each ``x_stderr`` into its ``x``."""
    rows = []
    for name, value in metrics.items():
        if name.endswith("_stderr") and name[: -len("_stderr")] in metrics:
            continue
        rows.append({"metric": name, "value": value, "stderr": metrics.get(f"{name}_stderr")})
    return rows


HEADLINE_ROWS = 12  # a run's final table: more rows than this and only its headline metrics are printed


def headline_rows(metrics: dict, primary: str | None = None, everything: bool = False) -> tuple[list[dict], int]:
    """(rows, how many were left out): every row when there are few (or ``everything``), else the primary metric,
    the other top-level ones (no ``/``, no ``@`` grid cell) and the primary of each model a run scores itself
    (``dfs/<primary>``, as the leaderboard's rows); an experiment's grid stays in metrics.json."""
    rows = metric_rows(metrics)
    if everything or len(rows) <= HEADLINE_ROWS:
        return rows, 0

    def rank(name: str) -> int | None:
        if "@" in name:
            return None
        if name == primary:
            return 0
        if "/" not in name:
            return 1
        return 2 if primary and name.endswith("/" + primary) else None

    ranked = [(rank(r["metric"]), i, r) for i, r in enumerate(rows)]
    top = [r for k, _, r in sorted(x for x in ranked if x[0] is not None)][:HEADLINE_ROWS] or rows[:HEADLINE_ROWS]
    return top, len(rows) - len(top)


@dataclass
class Cell:
    """One leaderboard entry: a model's headline number on a task, from one run."""

    row: str  # the model (with its model args), or a model the run trained or scored itself
    column: str  # task family [variant] / headline metric
    value: float
    stderr: float | None
    run_id: str
    limit: int | None  # the run's --limit (a partial evaluation), None for a full one
    finished: float


def variant_of(task, task_args: dict) -> str:
    """The part of a task's identity that gets its own leaderboard column: the values of its ``variant_args``
    (defaults filled in from its signature, so a preset that leaves one at its default lands in the same column as
    one that names it), or a ``variant`` string the task sets itself (a dataset task: its YAML's task name)."""
    if getattr(task, "variant", ""):
        return str(task.variant)
    names = getattr(task, "variant_args", ())
    if not names:
        return ""
    try:
        defaults = {n: p.default for n, p in inspect.signature(type(task)).parameters.items()}
    except (TypeError, ValueError):
        defaults = {}
    values = {n: task_args.get(n, defaults.get(n, inspect.Parameter.empty)) for n in names}
    return ",".join(f"{n}={v}" for n, v in values.items() if v is not inspect.Parameter.empty)


def model_label(run: dict) -> str:
    args = run.get("model_args") or {}
    extra = f" [{','.join(f'{k}={v}' for k, v in sorted(args.items()))}]" if args else ""
    return (run["model"] or "(no model)") + extra


def run_cells(run: dict) -> list[Cell]:
    """The cells one finished run contributes. A run that trains or scores several models itself reports each as
    ``<name>/<metric>`` (graph_cot: ``dfs/evidence_accuracy``, ``baseline/random-path/evidence_accuracy``); each
    becomes its own row, ``<model>/<name>``, or ``scheme:rest`` for a name with a slash (a backend spec), so trained
    models, baselines and LLMs of one task share its column."""
    metric, metrics = run["primary_metric"], run["metrics"]
    if run["status"] != "finished" or not metric:
        return []
    column = f"{run.get('family') or run['task']}{f'[{v}]' if (v := run.get('variant')) else ''}/{metric}"
    limit = int(run["run_limit"]) if run.get("run_limit") not in (None, "") else None
    suffix = "/" + metric
    subs = [k[: -len(suffix)] for k in metrics if k.endswith(suffix) and "@" not in k]
    entries = (
        [(model_label(run), metric)]
        if not subs
        else [
            (sub.replace("/", ":", 1) if "/" in sub else f"{model_label(run)}/{sub}", f"{sub}{suffix}") for sub in subs
        ]
    )
    cells = []
    for row, key in entries:
        value = metrics.get(key)
        if isinstance(value, int | float):
            stderr = metrics.get(f"{key}_stderr")
            cells.append(
                Cell(
                    row,
                    column,
                    float(value),
                    stderr if isinstance(stderr, int | float) else None,
                    run["run_id"],
                    limit,
                    run.get("finished") or 0,
                )
            )
    return cells


def leaderboard_cells(runs: list[dict], include_limited: bool = True) -> list[Cell]:
    """The cell of each (model, column): a full run beats one with --limit, then the latest wins."""
    best: dict[tuple[str, str], Cell] = {}
    for run in sorted(runs, key=lambda r: r.get("finished") or 0):
        for cell in run_cells(run):
            if cell.limit is not None and not include_limited:
                continue
            key = (cell.row, cell.column)
            old = best.get(key)
            if old is None or (cell.limit is None, cell.finished) >= (old.limit is None, old.finished):
                best[key] = cell
    first_seen = {}  # rows and columns keep the order in which runs first filled them
    for run in sorted(runs, key=lambda r: r.get("finished") or 0):
        for cell in run_cells(run):
            first_seen.setdefault(cell.column, len(first_seen))
    return sorted(best.values(), key=lambda c: (first_seen[c.column], c.finished))


def leaderboard(
    runs: list[dict], include_limited: bool = True, with_stderr: bool = False, marks: dict | None = None
) -> tuple[list[dict], list[str]]:
    """Models x tasks: each task's headline metric, one column per task (family and variant) and metric.

    Runs of a task whose ``variant_args`` differ (propane_transfer's ``source``) get a column each, ``task[k=v]``.
    With ``with_stderr`` a cell is text, ``value ± stderr``, and ``*`` marks a run with --limit; ``marks`` (from
    :func:`harness.significance.column_marks`) add each cell's CI, ``[low, high]``, and its significance mark.
    """
    table: dict[str, dict] = {}
    columns: list[str] = []
    for cell in leaderboard_cells(runs, include_limited):
        if cell.column not in columns:
            columns.append(cell.column)
        value = cell.value
        if with_stderr:
            mark = (marks or {}).get((cell.row, cell.column))
            value = fmt_value(cell.value) + (f" ± {fmt_value(cell.stderr)}" if cell.stderr is not None else "")
            value += mark.interval() if mark else ""
            value += "*" if cell.limit is not None else ""
            value += mark.symbol if mark else ""
        table.setdefault(cell.row, {"model": cell.row})[cell.column] = value
    return list(table.values()), ["model"] + columns


def figure():
    """matplotlib's pyplot on the file-only Agg backend (no display needed); imported on first use, so that
    importing this module stays cheap. Plugins draw their own plots with it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path) -> Path:
    """Lay out, write (110 dpi) and close ``fig``: a run writes many plots, and pyplot keeps every open figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    figure().close(fig)
    return Path(path)


def plot_lines(
    path: Path,
    series: dict,
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx=False,
    logy=False,
    errors: dict | None = None,
) -> Path:
    """One line per label: ``series = {label: (xs, ys)}``, optional ``errors = {label: stderrs}`` as bands."""
    plt = figure()
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
    return save_figure(fig, path)


def plot_heatmap(path: Path, matrix, row_labels, col_labels, xlabel: str, ylabel: str, title: str = "") -> Path:
    """A labelled heatmap with the value written in each cell."""
    plt = figure()
    fig, ax = plt.subplots(figsize=(1 + 0.7 * len(col_labels), 1 + 0.5 * len(row_labels)))
    image = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1, aspect="auto", origin="lower")
    ax.set_xticks(range(len(col_labels)), [str(c) for c in col_labels])
    ax.set_yticks(range(len(row_labels)), [str(r) for r in row_labels])
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(
                j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value < 0.5 else "black"
            )
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    fig.colorbar(image, ax=ax)
    return save_figure(fig, path)


def json_safe(value):
    """JSON has no NaN or infinity: a missing interval bound (or a list of them) is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def write_study(out: Path, metrics: dict, commands: list[str]) -> None:
    """The record of a study (a ``python -m`` analysis of finished runs): ``metrics.json`` and the commands that made
    it, one per line, in ``commands.txt``, in ``out`` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    (out / "commands.txt").write_text("".join(f"{line}\n" for line in commands if line))
