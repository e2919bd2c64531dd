"""``harness sweep``, and ``harness run`` on a preset with a ``sweep:`` block."""

from __future__ import annotations

from harness.errors import UsageError, install_command
from harness.options import parse_kv
from harness.sweep.spec import parse_grid, parse_plot, parse_seeds
from harness.tracking import OPTION_HELP, selected

HELP = "run a task over a grid of task args (each point is an ordinary run; the sweep collects them)"

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
        help=f"local processes, or Ray tasks ({install_command('ray')})",
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
    parser.add_argument("--log", action="append", metavar="NAME", help=OPTION_HELP)
    parser.add_argument("--json", action="store_true", help="print the sweep's metrics as JSON")


def sweep_command(args) -> int:
    from harness.sweep.engine import run_sweep
    from harness.sweep.plan import SweepOptions

    if args.ray_address and args.executor != "ray":
        raise UsageError("--ray-address needs --executor ray")
    result = run_sweep(
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
            trackers=selected(args.log),
        )
    )
    result.show("json" if args.json else "table")
    return 0


def run_preset_sweep(request, preset, json: bool) -> int:
    """``harness run --task P`` on a preset with a ``sweep:`` block: its sweep, with run's flags for every point."""
    from harness.runs import check_request
    from harness.sweep.engine import run_sweep
    from harness.sweep.plan import SweepOptions

    check_request(request)
    result = run_sweep(
        SweepOptions(
            task=request.task,
            seeds=None if preset.sweep.seeds != [0] else [request.seed],
            task_args=request.task_args,
            model=request.model,
            model_args=request.model_args,
            limit=request.limit,
            probes=request.probes,
            probe_every=request.probe_every,
            include_paths=request.include_paths,
            out=request.out,
            no_cache=not request.use_cache,
            trackers=request.trackers,
            json=json,
        )
    )
    result.show("json" if json else "table")
    return 0
