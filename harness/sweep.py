"""Sweeps: every combination of a grid of task args is one ordinary run; the sweep is a run that collects them.

``harness sweep --task T --grid "n=16,64;attention=sdpa,identity" --seeds 0,1,2`` runs each point as its own
``harness run`` subprocess, so a point has its own run id, record, resume and leaderboard row, exactly as if it had
been typed by hand. Points run in parallel processes that die with the sweep (local executor) or as Ray tasks that
send their run folder back to the driver (``--executor ray``: no shared disk needed). The sweep itself is a run in
the same ``--out``: its ``metrics.json`` holds ``<metric>@<arg>=<value>,...`` for every point (the mean over seeds
and its stderr), ``samples.jsonl`` one record per point, and its plots a metric against a swept arg.

Re-running a sweep skips its finished points (a finished run with ``metrics.json``); a kill -9 loses no finished
point. A preset may declare the sweep (see :func:`parse_sweep_block`); ``harness run`` on it runs the sweep.

Importing this module stays cheap: no torch, no ray.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from harness.errors import UsageError, unknown
from harness.options import accepted, build, parse_kv, parse_scalar
from harness.paths import out_dir

HELP = "run a task over a grid of task args (each point is an ordinary run; the sweep collects them)"
RAY_MISSING = "--executor ray needs Ray, which is not installed: pip install -e '.[ray]' (in the harness checkout)"
EPILOG = """\
Each point (a combination of grid values, times each seed) is an ordinary `harness run` in --out: its own run id,
record, resume and leaderboard row. The sweep is a run too: metrics.json holds <metric>@<arg>=<value>,... for every
point (mean over seeds, with _stderr), samples.jsonl one record per point, and <metric>_vs_<arg>.png the plots.
Re-running the same command skips finished points.

examples:
  harness sweep --task graph_cot --model baseline:random-path --grid 'depth=1,2,3,4' --task-args examples=2000
  harness sweep --task my_task --grid 'n=16,64,256;attention=sdpa,identity' --seeds 0,1,2 --plot test_accuracy:n
  harness sweep --task my_task --grid 'n=16,64' --executor ray --ray-address auto   # on a Ray cluster
"""
POINT_ENV = "HARNESS_SWEEP_POINT"  # set in a point's process: `harness run` on a sweep preset runs one point
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


# parsing ---------------------------------------------------------------------------------------------------------
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


# the command -----------------------------------------------------------------------------------------------------
def configure_sweep(parser) -> None:
    import argparse

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--task", required=True, help="task preset or task family (see harness list tasks)")
    parser.add_argument(
        "--grid",
        metavar="'A=1,2;B=x,y'",
        help="args to sweep, every combination is one run (default: the preset's sweep grid)",
    )
    parser.add_argument("--task-args", help="fixed task options k=v,... for every point")
    parser.add_argument("--model", help="model spec for every point, e.g. hf:smollm2, baseline:random-path")
    parser.add_argument("--model-args", help="engine options k=v,...")
    parser.add_argument(
        "--seeds",
        help="run each point once per seed, e.g. 0,1,2; sweep metrics are means with "
        "stderr across seeds (default: the preset's, else 0)",
    )
    parser.add_argument("--metrics", help="point metrics to collect, e.g. accuracy,loss (default: the primary)")
    parser.add_argument(
        "--plot",
        action="append",
        default=[],
        metavar="METRIC:ARG",
        help="plot METRIC against swept ARG (repeatable; default: each metric against the first arg)",
    )
    parser.add_argument("--workers", type=int, help="points run at once (default: CPU cores // the task's threads)")
    parser.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local processes, or Ray tasks (pip install -e '.[ray]')",
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="Ray cluster to join, e.g. ray://head:10001 or auto (default: start a local one)",
    )
    parser.add_argument("--limit", type=int, help="evaluate at most N examples per point")
    parser.add_argument(
        "--include-path", action="append", default=[], metavar="DIR", help="a folder of extra task presets (repeatable)"
    )
    parser.add_argument("--out", help="results folder (default ./runs or $HARNESS_OUT)")
    parser.add_argument("--no-cache", action="store_true", help="do not use the response cache")
    parser.add_argument("--json", action="store_true", help="print the sweep's metrics as JSON")


def sweep_command(args) -> int:
    if args.ray_address and args.executor != "ray":
        raise UsageError("--ray-address needs --executor ray")
    return run_sweep(
        SweepOptions(
            task=args.task,
            grid=parse_grid(args.grid) if args.grid is not None else None,
            seeds=parse_seeds(args.seeds) if args.seeds else None,
            metrics=[m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None,
            plots=[parse_plot(p) for p in args.plot] or None,
            workers=args.workers,
            task_args=parse_kv(args.task_args, "--task-args"),
            model=args.model,
            model_args=parse_kv(args.model_args, "--model-args"),
            limit=args.limit,
            include_paths=args.include_path,
            out=args.out,
            no_cache=args.no_cache,
            json=args.json,
            executor=args.executor,
            ray_address=args.ray_address,
        )
    )


def is_sweep(preset) -> bool:
    """Whether ``harness run`` on this preset runs its sweep (not inside one of the sweep's own points)."""
    return getattr(preset, "sweep", None) is not None and not os.environ.get(POINT_ENV)


def run_preset_sweep(args, preset) -> int:
    """``harness run --task P`` on a preset with a ``sweep:`` block: its sweep, with run's flags for every point."""
    if args.probe_every < 1:
        raise UsageError(f"--probe-every {args.probe_every}: give a positive number of steps")
    return run_sweep(
        SweepOptions(
            task=args.task,
            seeds=None if preset.sweep.seeds != [0] else [args.seed],
            task_args=parse_kv(args.task_args, "--task-args"),
            model=args.model,
            model_args=parse_kv(args.model_args, "--model-args"),
            limit=args.limit,
            probes=[p.strip() for p in (args.probe or "").split(",") if p.strip()],
            probe_every=args.probe_every,
            include_paths=args.include_path,
            out=args.out,
            no_cache=args.no_cache,
            json=args.json,
        )
    )


@dataclass
class SweepOptions:
    """A sweep as asked for on the command line; None means the preset's (or the default)."""

    task: str
    grid: dict | None = None
    seeds: list[int] | None = None
    metrics: list[str] | None = None
    plots: list[dict] | None = None
    workers: int | None = None
    task_args: dict = field(default_factory=dict)
    model: str | None = None
    model_args: dict = field(default_factory=dict)
    limit: int | None = None
    probes: list[str] = field(default_factory=list)
    probe_every: int = 100
    include_paths: list[str] = field(default_factory=list)
    out: str | None = None
    no_cache: bool = False
    json: bool = False
    executor: str = "local"
    ray_address: str | None = None


def run_sweep(options: SweepOptions) -> int:
    """Resolve and validate everything up front (exit 2 before any point starts), then run the sweep as a run."""
    from harness.commands import execute

    sweep = Sweep.resolve(options)
    identity = {
        "task": f"sweep:{sweep.preset.name}",
        "task_family": sweep.preset.task,
        "task_version": sweep.version,
        "grid": sweep.spec.grid,
        "task_args": {k: v for k, v in sweep.base_args.items() if k not in sweep.spec.grid},
        "seeds": sweep.spec.seeds,
        "metrics": sweep.spec.metrics,
        "plots": sweep.spec.plots,
        "model": sweep.model,
        "model_args": sweep.model_args,
        "seed": sweep.spec.seeds[0],
        "limit": options.limit,
        "probes": options.probes,
    }
    run_args = SimpleNamespace(out=str(sweep.out), no_cache=options.no_cache, json=options.json)
    return execute(run_args, SweepRun(sweep), identity, [])


# resolving a sweep -----------------------------------------------------------------------------------------------
@dataclass
class Sweep:
    """A validated sweep: the task, its points and where they run."""

    options: SweepOptions
    preset: object  # harness.presets.Preset
    factory: object  # the registered task factory (a class may define sweep_summary)
    spec: SweepSpec
    base_args: dict  # preset args + --task-args (as every point's run sees them)
    points: list[Point]
    model: str | None
    model_args: dict
    version: str
    threads: int  # the task's own thread count: workers default to cores // threads
    out: Path
    plugin_modules: list[str]

    @classmethod
    def resolve(cls, options: SweepOptions) -> Sweep:
        from harness.registry import get_plugins

        preset, entry = resolve_task(options.task, options.include_paths)
        spec = sweep_spec(options, preset)
        where = "--grid" if options.grid is not None or preset.sweep is None else f"{preset.source} sweep.grid"
        task_args = options.task_args
        if where != "--grid":  # a preset's swept arg given in --task-args narrows its grid to that value
            narrowed = {k: [v] for k, v in task_args.items() if k in spec.grid}
            spec = dataclasses.replace(spec, grid={**spec.grid, **narrowed})
            task_args = {k: v for k, v in task_args.items() if k not in narrowed}
        check_grid_keys(entry.factory, spec.grid, task_args, preset.task, where)
        if options.limit is not None and options.limit < 1:
            raise UsageError(f"--limit {options.limit}: give a positive number of examples")
        for probe in options.probes:
            get_plugins().registry("probes").get(probe)
        # the point's --task-args go through the command line: use the values its run will read back
        fixed = parse_kv(format_kv(task_args), "--task-args")
        base_args = {**preset.args, **fixed}
        points, tasks, threads = [], [], 1
        for combo in itertools.product(*spec.grid.values()):
            values = parse_kv(format_kv(dict(zip(spec.grid, combo))), where)
            args = {**base_args, **values}
            tasks.append(build(entry.factory, args, f"task '{preset.task}' at {format_kv(values)}", where))
            threads = max(threads, task_threads(tasks[-1], args))
            points += [Point(values, seed, args) for seed in spec.seeds]
        if options.executor == "ray":
            check_ray()
        return cls(
            options=options,
            preset=preset,
            factory=entry.factory,
            spec=spec,
            base_args=base_args,
            points=points,
            model=options.model or preset.model,
            model_args={**preset.model_args, **options.model_args},
            version=str(getattr(tasks[0], "version", preset.version)),
            threads=threads,
            out=out_dir(options.out).resolve(),
            plugin_modules=list(get_plugins().extra_modules),
        )

    @property
    def task_ref(self) -> str:
        """What a point passes to ``harness run --task``: the preset's name, or its file's absolute path."""
        task = self.options.task
        return str(Path(task).expanduser().resolve()) if Path(task).suffix in (".yaml", ".yml") else task

    @property
    def workers(self) -> int:
        return self.spec.workers or max(1, (os.cpu_count() or 1) // self.threads)

    def identity(self, point: Point) -> dict:
        """The parts of the config ``harness run`` records that say which point a run is."""
        return {
            "task": self.preset.name,
            "task_version": self.version,
            "task_args": point.args,
            "model": self.model,
            "model_args": self.model_args,
            "seed": point.seed,
            "limit": self.options.limit,
            "probes": self.options.probes,
        }

    def argv(self, point: Point) -> list[str]:
        """The point's ``harness`` command line, without ``--out``."""
        o = self.options
        argv = [a for m in self.plugin_modules for a in ("-p", m)]
        argv += ["run", "--task", self.task_ref, "--seed", str(point.seed), "--json"]
        overrides = {**o.task_args, **point.values}
        argv += ["--task-args", format_kv(overrides)] if overrides else []
        argv += ["--model", o.model] if o.model else []
        argv += ["--model-args", format_kv(o.model_args)] if o.model_args else []
        argv += [a for d in o.include_paths for a in ("--include-path", str(Path(d).resolve()))]
        argv += ["--limit", str(o.limit)] if o.limit is not None else []
        argv += ["--probe", ",".join(o.probes), "--probe-every", str(o.probe_every)] if o.probes else []
        return argv + (["--no-cache"] if o.no_cache else [])


def resolve_task(name: str, include_paths: list[str]):
    """(preset, task entry) for a preset file's path, a preset or a task family, as ``harness run`` finds them."""
    from harness import presets as preset_module
    from harness.presets import Preset, load_presets
    from harness.registry import get_plugins

    presets = load_presets(include_paths)
    tasks = get_plugins().registry("tasks")
    task_file = getattr(preset_module, "task_file", lambda text: None)  # --task path/to/preset.yaml
    if (file_preset := task_file(name)) is not None:
        preset = file_preset
    elif name in presets:
        preset = presets[name]
    elif name in tasks:
        preset = Preset(name=name, task=name, source="(task family)")
    else:
        raise unknown("task", name, set(presets) | {e.name for e in tasks})
    return preset, tasks.get(preset.task)


def sweep_spec(options: SweepOptions, preset) -> SweepSpec:
    """The preset's sweep with the command line's choices on top."""
    base = preset.sweep or SweepSpec(grid={})
    grid = options.grid if options.grid is not None else base.grid
    if not grid:
        raise UsageError(f"'{options.task}' declares no sweep: give the args to sweep, e.g. --grid 'depth=1,2,3'")
    plots = options.plots if options.plots is not None else [p for p in base.plots if p["x"] in grid]
    for plot in plots:
        if plot["x"] not in grid:
            raise UsageError(
                f"--plot {plot['metric']}:{plot['x']}: '{plot['x']}' is not swept; choose one of {', '.join(grid)}"
            )
    workers = options.workers if options.workers is not None else base.workers
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}: give at least 1")
    return SweepSpec(
        grid=grid,
        seeds=options.seeds or base.seeds,
        metrics=options.metrics or base.metrics,
        plots=plots,
        workers=workers,
    )


def check_grid_keys(factory, grid: dict, task_args: dict, family: str, where: str) -> None:
    """Every swept name is an arg of the task (did-you-mean) and not also fixed by --task-args."""
    names = accepted(factory)
    for key in grid:
        if names is not None and key not in names:
            hint = str(unknown("arg", key, [n for n in names if n != "self"])).split(": ", 1)[1]
            raise UsageError(f"task '{family}' has no arg '{key}' ({where}); {hint}")
        if key in task_args:
            raise UsageError(f"'{key}' is both swept ({where}) and fixed by --task-args; give it in one place")


def task_threads(task, args: dict) -> int:
    """The cores one run of the task occupies: its ``cores`` attribute (a task that starts worker processes of
    its own declares threads x processes there), else its ``threads`` arg or attribute, else 1."""
    value = getattr(task, "cores", None) or args.get("threads", getattr(task, "threads", 1))
    return max(1, value) if type(value) is int else 1


# running a sweep -------------------------------------------------------------------------------------------------
class SweepRun:
    """The sweep as a task for ``harness.commands.execute``: it runs the points and returns the sweep's metrics."""

    name = "sweep"
    version = "1"
    primary_metric = None  # a sweep has no headline number: it is not a leaderboard row

    def __init__(self, sweep: Sweep):
        self.sweep = sweep

    def run(self, ctx) -> dict[str, float]:
        sweep = self.sweep
        records = {r["id"]: r for r in ctx.run.samples() if r.get("status") == "finished"}
        results = finished_points(sweep, records)
        ctx.record([record(p, results[p.id]) for p in sweep.points if p.id in results and p.id not in records])
        todo = [p for p in sweep.points if p.id not in results]
        skipped = len(sweep.points) - len(todo)
        print(
            f"sweep: {len(sweep.points)} points, {skipped} finished before, {len(todo)} to run"
            f"{f' ({sweep.options.executor}, {min(sweep.workers, len(todo))} at a time)' if todo else ''}",
            file=sys.stderr,
        )
        failures: dict[str, str] = {}

        def done(point: Point, result: dict | None, log: str) -> None:
            if result is None:
                failures[point.id] = log
            else:
                results[point.id] = result
                ctx.record([record(point, result)])
            status = f"finished {result['run_id']}" if result else f"FAILED (log: {log})"
            print(f"sweep: [{len(results) + len(failures)}/{len(sweep.points)}] {point.id}: {status}", file=sys.stderr)

        if todo and sweep.options.executor == "ray":
            run_on_ray(sweep, todo, done, ctx.path("logs"))
        elif todo:
            run_locally(sweep, todo, done, ctx.path("logs"))
        write_records(ctx, [record(p, results.get(p.id)) for p in sweep.points])
        metrics = collect(sweep, results, ctx, complete=not failures)
        if failures:
            logs = ", ".join(failures.values())
            raise RuntimeError(
                f"{len(failures)} of {len(sweep.points)} points failed (logs: {logs}); "
                "fix and re-run the same command: finished points are kept"
            )
        return metrics


def finished_points(sweep: Sweep, records: dict) -> dict[str, dict]:
    """Points already finished in ``--out``: by the sweep's own records, else by a finished run whose config.yaml
    says it is the point (a point that finished just before a kill, before the sweep could record it)."""
    import yaml

    from harness.store import Index

    rows = {
        r["run_id"]: r for r in Index(sweep.out).runs("finished") if (sweep.out / r["run_id"] / "metrics.json").exists()
    }
    results = {}
    for point in sweep.points:
        run_id = records.get(point.id, {}).get("run_id")
        if run_id in rows:
            results[point.id] = result_of(sweep.out, rows[run_id])
    todo = {json.dumps(sweep.identity(p), sort_keys=True, default=str): p for p in sweep.points if p.id not in results}
    for row in rows.values() if todo else ():
        if row["task"] != sweep.preset.name or not (sweep.out / row["run_id"] / "config.yaml").exists():
            continue
        config = yaml.safe_load((sweep.out / row["run_id"] / "config.yaml").read_text()) or {}
        key = json.dumps({k: config.get(k) for k in sweep.identity(sweep.points[0])}, sort_keys=True, default=str)
        if key in todo:
            results[todo.pop(key).id] = result_of(sweep.out, row)
    return results


def result_of(out: Path, row: dict) -> dict:
    """A finished point: its run id, folder, metrics (from metrics.json) and primary metric (from the index)."""
    folder = out / row["run_id"]
    return {
        "run_id": row["run_id"],
        "dir": folder,
        "metrics": json.loads((folder / "metrics.json").read_text()),
        "primary_metric": row.get("primary_metric"),
    }


def record(point: Point, result: dict | None) -> dict:
    """The sweep's sample for one point."""
    return {
        "id": point.id,
        "point": point.values,
        "args": point.args,
        "seed": point.seed,
        "run_id": result["run_id"] if result else None,
        "status": "finished" if result else "failed",
        "metrics": result["metrics"] if result else {},
    }


def write_records(ctx, records: list[dict]) -> None:
    """Replace the appended progress records by one record per point, in grid order (atomic)."""
    path = ctx.run.samples_path
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, default=str) + "\n" for r in records))
    os.replace(tmp, path)


def point_env() -> dict:
    return {**os.environ, POINT_ENV: "1"}


def last_json(text: str) -> dict | None:
    """The JSON object ``harness run --json`` prints last (a task may print lines before it)."""
    starts = ([0] if text.startswith("{") else []) + [m.start() + 1 for m in re.finditer(r"\n\{\n", text)]
    for start in reversed(starts):
        try:
            data = json.loads(text[start:])
        except json.JSONDecodeError:
            continue
        return data if isinstance(data, dict) and "run_id" in data else None
    return None


def run_locally(sweep: Sweep, todo: list[Point], done, logs: Path) -> None:
    """Up to ``workers`` point processes at once, each killed by the kernel when this process dies.

    A single thread starts and polls them: ``preexec_fn`` is only safe without other threads.
    """
    from harness.store import Index
    from harness.workers import die_with_parent

    logs.mkdir(exist_ok=True)
    queue, running = list(todo), []
    while queue or running:
        while queue and len(running) < sweep.workers:
            point = queue.pop(0)
            log, out = (logs / f"{_file_name(point.id)}{suffix}" for suffix in (".log", ".json"))
            command = [sys.executable, "-m", "harness.cli", *sweep.argv(point), "--out", str(sweep.out)]
            with open(log, "w") as err, open(out, "w") as stdout:
                err.write(f"$ {' '.join(command)}\n")
                err.flush()
                process = subprocess.Popen(
                    command, stdout=stdout, stderr=err, env=point_env(), preexec_fn=die_with_parent
                )
            running.append((point, process, log, out))
        time.sleep(0.1)
        for item in [item for item in running if item[1].poll() is not None]:
            running.remove(item)
            point, process, log, out = item
            data = last_json(out.read_text())
            rows = {r["run_id"]: r for r in Index(sweep.out).runs("finished")} if data else {}
            ok = process.returncode == 0 and data and data["run_id"] in rows
            done(point, result_of(sweep.out, rows[data["run_id"]]) if ok else None, str(log))


def check_ray() -> None:
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise UsageError(RAY_MISSING)


def run_on_ray(sweep: Sweep, todo: list[Point], done, logs: Path) -> None:
    """Each point as a Ray task (``max_retries``: a point whose worker dies runs again); its run folder comes back
    as bytes and is written into the driver's ``--out`` under its run id, so writing it twice changes nothing."""
    import ray

    logs.mkdir(exist_ok=True)
    address = sweep.options.ray_address
    try:
        ray.init(**({"address": address} if address else {"include_dashboard": False}), log_to_driver=False)
    except ConnectionError as exc:
        reason = str(exc).splitlines()[0]
        raise UsageError(
            f"--ray-address {address}: {reason}; start the cluster (ray start --head) or fix the "
            "address (with token authentication, export RAY_AUTH_MODE=token)"
        ) from None
    try:
        remote = ray.remote(num_cpus=sweep.threads, max_retries=3)(run_point_in_temp_dir)
        queue, futures = list(todo), {}
        in_flight = sweep.spec.workers or len(todo)
        while queue or futures:
            while queue and len(futures) < in_flight:
                point = queue.pop(0)
                futures[remote.remote(sweep.argv(point))] = point
            (ready,), _ = ray.wait(list(futures), num_returns=1)
            point = futures.pop(ready)
            try:
                returned = ray.get(ready)
            except ray.exceptions.RayError as exc:  # retries used up, or the task could not run at all
                returned = {"returncode": -1, "log": f"{type(exc).__name__}: {exc}"}
            log = logs / f"{_file_name(point.id)}.log"
            log.write_text(returned["log"])
            result = store_returned_run(sweep.out, returned) if returned["returncode"] == 0 else None
            done(point, result, str(log))
    finally:
        ray.shutdown()


def run_point_in_temp_dir(argv: list[str]) -> dict:
    """On a Ray worker: run the point in a temporary ``--out``; return its files (path -> bytes) and primary metric."""
    from harness.store import Index
    from harness.workers import die_with_parent

    with tempfile.TemporaryDirectory(prefix="harness-point-") as tmp:
        command = [sys.executable, "-m", "harness.cli", *argv, "--out", tmp]
        process = subprocess.run(command, capture_output=True, text=True, env=point_env(), preexec_fn=die_with_parent)
        log = f"$ {' '.join(command)}\n(on {os.uname().nodename}, pid {os.getpid()})\n{process.stderr}"
        data = last_json(process.stdout)
        if process.returncode != 0 or data is None:
            return {"returncode": process.returncode or 1, "log": log}
        folder = Path(tmp) / data["run_id"]
        files = {
            str(f.relative_to(folder)): f.read_bytes()
            for f in sorted(folder.rglob("*"))
            if f.is_file() and f.name != ".lock" and not f.name.endswith(".tmp")
        }
        return {
            "returncode": 0,
            "log": log,
            "run_id": data["run_id"],
            "files": files,
            "primary_metric": Index(Path(tmp)).get(data["run_id"])["primary_metric"],
        }


def store_returned_run(out: Path, returned: dict) -> dict:
    """Write a run folder that came back from a worker into ``out`` and index it there, finished, with this
    process's store code (the worker's harness may be another version)."""
    import yaml

    from harness.store import Run

    files = returned["files"]
    folder = out / returned["run_id"]
    for name, data in files.items():
        if name == "metrics.json":
            continue  # written last, by Run.finish: it marks the run finished
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    run = Run(out, returned["run_id"], yaml.safe_load(files["config.yaml"]) or {})
    run.finish(json.loads(files["metrics.json"]), returned["primary_metric"])
    return result_of(out, {"run_id": run.id, "primary_metric": returned["primary_metric"]})


# the sweep's metrics and plots -----------------------------------------------------------------------------------
def collect(sweep: Sweep, results: dict[str, dict], ctx, complete: bool) -> dict[str, float]:
    """``<metric>@<point>`` (mean over seeds) and its ``_stderr`` for every point; plots; the task's summary."""
    from harness.evaluation import mean_stderr

    names = collected_metrics(sweep, results)
    metrics: dict[str, float] = {}
    groups: dict[str, list[Point]] = {}
    for point in sweep.points:
        groups.setdefault(point.key, []).append(point)
    for key, group in groups.items():
        for name in names:
            runs = [results[p.id]["metrics"] for p in group if p.id in results and name in results[p.id]["metrics"]]
            if not runs:
                continue
            if len(sweep.spec.seeds) > 1:
                mean, stderr = mean_stderr([float(m[name]) for m in runs])
            else:
                mean, stderr = runs[0][name], runs[0].get(f"{name}_stderr")
            metrics[f"{name}@{key}"] = mean
            if stderr is not None:
                metrics[f"{name}@{key}_stderr"] = stderr
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
            ctx.path(f"{_file_name(name)}_vs_{x}.png"),
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


def _file_name(text: str) -> str:
    return re.sub(r"[^\w.=,-]+", "_", text)[:150]
