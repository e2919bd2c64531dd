"""What a sweep is: its grid, seeds, metrics and plots (a preset's ``sweep:`` block or ``harness sweep``'s flags),
the points it expands to, and the parsing of both. Imports nothing of the sweep's machinery: presets read it."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from harness.errors import UsageError
from harness.options import parse_scalar

KEY = r"[A-Za-z_][\w.-]*"


@dataclass
class SweepSpec:
    """What a sweep runs and collects (a preset's ``sweep:`` block, or the ``harness sweep`` flags)."""

    grid: dict[str, list]  # task arg -> values; every combination is one point
    seeds: list[int] = field(default_factory=lambda: [0])  # each point once per seed
    metrics: list[str] = field(default_factory=list)  # point metrics to collect; empty: the points' primary metric
    plots: list[dict] = field(default_factory=list)  # {"metric": m, "x": arg}; empty: each metric vs the first arg
    workers: int | None = None  # parallel points; None: cores // the task's threads

    def describe(self) -> str:
        """'depth x attention x 3 seeds, 24 runs' for ``harness list tasks``."""
        runs = math.prod(len(v) for v in self.grid.values()) * len(self.seeds)
        seeds = f" x {len(self.seeds)} seeds" if len(self.seeds) > 1 else ""
        return f"{' x '.join(self.grid)}{seeds}, {runs} runs"


@dataclass
class Point:
    """One run of a sweep: grid values and a seed."""

    values: dict  # this point's grid values
    seed: int
    args: dict  # every task arg the point's run gets (preset args, --task-args, grid values)

    @property
    def key(self) -> str:
        return format_kv(self.values)

    @property
    def id(self) -> str:
        return f"{self.key} seed={self.seed}"


def format_value(value) -> str:
    """A value as ``parse_scalar`` reads it back: true/false, none, numbers, text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    return repr(value) if isinstance(value, float) else str(value)


def format_kv(values: dict) -> str:
    return ",".join(f"{k}={format_value(v)}" for k, v in values.items())


def parse_grid(text: str, flag: str = "--grid") -> dict[str, list]:
    """'n=16,64;attention=sdpa,identity' -> {'n': [16, 64], 'attention': ['sdpa', 'identity']}."""
    example = f'{flag} "n=16,64;attention=sdpa,identity"'
    grid: dict[str, list] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        key, sep, values = part.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(KEY, key):
            raise UsageError(f"{flag} '{text}': expected arg=v1,v2,... groups separated by ';', e.g. {example}")
        if key in grid:
            raise UsageError(f"{flag} '{text}': '{key}' appears twice; give each arg once")
        items = [v.strip() for v in values.split(",")]
        if not values.strip() or any(not v for v in items):
            raise UsageError(f"{flag} '{text}': '{key}' has an empty value; give values like {key}=1,2,3")
        grid[key] = _unique([parse_scalar(v) for v in items], f"{flag} '{text}': '{key}'")
    if not grid:
        raise UsageError(f"{flag} '{text}': no args to sweep; e.g. {example}")
    return grid


def _unique(values: list, where: str) -> list:
    if len({format_value(v) for v in values}) != len(values):
        raise UsageError(f"{where} lists a value twice; give each value once")
    return values


def parse_seeds(text: str, flag: str = "--seeds") -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise UsageError(f"{flag} '{text}': give integers separated by commas, e.g. {flag} 0,1,2") from None
    return _unique(seeds, f"{flag} '{text}'")


def parse_plot(text: str) -> dict:
    """'evidence_accuracy:depth' -> {"metric": "evidence_accuracy", "x": "depth"}."""
    metric, sep, x = text.rpartition(":")
    if not sep or not metric or not re.fullmatch(KEY, x):
        raise UsageError(f"--plot '{text}': give METRIC:ARG, e.g. --plot test_accuracy:n")
    return {"metric": metric, "x": x}


def parse_sweep_block(data, source: str) -> SweepSpec:
    """Validate a preset's ``sweep:`` block; every error is one line naming the file and the key."""
    where = f"{source}: key 'sweep"
    if not isinstance(data, dict):
        raise UsageError(f"{where}' must be a mapping with 'grid:', got {type(data).__name__}")
    allowed = ("grid", "seeds", "metrics", "plots", "workers")
    for key in data:
        if key not in allowed:
            raise UsageError(f"{where}.{key}' is unknown; allowed: {', '.join(allowed)}")
    grid = data.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise UsageError(f"{where}.grid' must be a mapping arg -> [values], e.g. grid: {{n: [16, 64]}}")
    for key, values in grid.items():
        if not isinstance(key, str) or not re.fullmatch(KEY, key):
            raise UsageError(f"{where}.grid': '{key}' is not an arg name")
        if not isinstance(values, list) or not values or any(isinstance(v, dict | list) for v in values):
            raise UsageError(f"{where}.grid.{key}' must be a non-empty list of values, e.g. {key}: [1, 2]")
        _unique(values, f"{where}.grid.{key}'")
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int for s in seeds):
        raise UsageError(f"{where}.seeds' must be a non-empty list of integers, e.g. seeds: [0, 1, 2]")
    _unique(seeds, f"{where}.seeds'")
    metrics = data.get("metrics", [])
    if not isinstance(metrics, list) or not all(isinstance(m, str) and m for m in metrics):
        raise UsageError(f"{where}.metrics' must be a list of metric names, e.g. metrics: [test_accuracy]")
    plots = data.get("plots", [])
    if not isinstance(plots, list):
        raise UsageError(f"{where}.plots' must be a list of {{metric: M, x: ARG}}")
    for plot in plots:
        if (
            not isinstance(plot, dict)
            or set(plot) != {"metric", "x"}
            or not all(isinstance(v, str) for v in plot.values())
        ):
            raise UsageError(f"{where}.plots' entries must be {{metric: M, x: ARG}}, got {plot!r}")
        if plot["x"] not in grid:
            raise UsageError(f"{where}.plots': x '{plot['x']}' is not swept; choose one of {', '.join(grid)}")
    workers = data.get("workers")
    if workers is not None and (type(workers) is not int or workers < 1):
        raise UsageError(f"{where}.workers' must be a positive integer, got {workers!r}")
    return SweepSpec(grid=dict(grid), seeds=seeds, metrics=metrics, plots=plots, workers=workers)


def is_sweep(preset) -> bool:
    """Whether ``harness run`` on this preset runs its sweep (a point of the sweep is run by the run module, which
    never dispatches to a sweep)."""
    return getattr(preset, "sweep", None) is not None
