"""A sweep resolved and validated up front (exit 2 before any point starts): the task, its points, and each point
as the :class:`harness.runs.RunRequest` that runs it."""

from __future__ import annotations

import dataclasses
import itertools
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import UsageError, unknown
from harness.options import accepted, build, parse_kv
from harness.paths import out_dir
from harness.runs import RunRequest, resolve_task
from harness.sweep.executors import check_ray
from harness.sweep.spec import Point, SweepSpec, format_kv


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
    trackers: list[str] = field(default_factory=list)  # --log: the sweep and each point go to these trackers


@dataclass
class Sweep:
    """A validated sweep: the task, its points and where they run."""

    options: SweepOptions
    preset: object  # harness.presets.Preset
    factory: object  # the registered task factory (a class may define sweep_summary)
    spec: SweepSpec
    base_args: dict  # preset args + --task-args (as every point's run sees them)
    fixed_args: dict  # --task-args, as a point's run reads them back
    points: list[Point]
    model: str | None
    model_args: dict
    version: str
    threads: int  # the task's own thread count: workers default to cores // threads
    out: Path
    plugin_modules: list[str]
    parent: str | None = None  # the sweep's own run id, once it runs: trackers nest the points under it

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
            fixed_args=fixed,
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

    def request(self, point: Point) -> RunRequest:
        """The point's run, as ``harness run`` with the sweep's flags and the point's values would ask for it."""
        o = self.options
        return RunRequest(
            task=self.task_ref,
            task_args={**self.fixed_args, **point.values},
            model=o.model,
            model_args=o.model_args,
            seed=point.seed,
            limit=o.limit,
            probes=o.probes,
            probe_every=o.probe_every,
            include_paths=[str(Path(d).resolve()) for d in o.include_paths],
            out=self.out,
            use_cache=not o.no_cache,
            quiet=True,
            command=self.command_line(point),
            plugin_modules=self.plugin_modules,
            trackers=o.trackers if o.executor == "local" else [],  # a Ray point is sent from the driver
            parent=self.parent,
        )

    def command_line(self, point: Point) -> str:
        """The ``harness run`` command that makes the same run by hand (recorded in the point's config)."""
        o = self.options
        argv = ["harness", *(a for m in self.plugin_modules for a in ("-p", m))]
        argv += ["run", "--task", self.task_ref, "--seed", str(point.seed)]
        overrides = {**o.task_args, **point.values}
        argv += ["--task-args", format_kv(overrides)] if overrides else []
        argv += ["--model", o.model] if o.model else []
        argv += ["--model-args", format_kv(o.model_args)] if o.model_args else []
        argv += ["--limit", str(o.limit)] if o.limit is not None else []
        argv += ["--probe", ",".join(o.probes), "--probe-every", str(o.probe_every)] if o.probes else []
        return shlex.join(argv + ["--out", str(self.out)])


def sweep_spec(options: SweepOptions, preset) -> SweepSpec:
    """The preset's sweep with the command line's choices on top."""
    base = preset.sweep or SweepSpec(grid={})
    grid = options.grid if options.grid is not None else base.grid
    if not grid and len(options.seeds or base.seeds) < 2:  # seeds alone are a sweep: one point, many seeds
        raise UsageError(
            f"'{options.task}' declares no sweep: give the args to sweep, e.g. --grid 'depth=1,2,3', or --seeds 0,1,2"
        )
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
