"""``harness merge``, and ``harness run``'s flags for one evaluation in shards (--shard i/N; --executor ray --shards N):
the commands over :mod:`harness.shards` and :mod:`harness.shards_ray`."""

from __future__ import annotations

from pathlib import Path

from harness.errors import UsageError
from harness.runs import RunRequest
from harness.shards import merge, parse_shard

__all__ = ["HELP", "add_run_options", "configure_merge", "merge_command", "parse_shard", "run_command"]

HELP = "join the shard runs of one evaluation (harness run --shard i/N) into the run one process would have written"


def configure_merge(parser) -> None:
    parser.add_argument("shards", nargs="*", metavar="SHARD_RUN", help="the shard runs' folders (or run ids in --out)")
    parser.add_argument("--out", help="where the merged run goes, and where run ids are looked up (default ./runs)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON (same as --format json)")
    parser.add_argument("--format", choices=("table", "json", "markdown"), default="table")


def merge_command(args) -> int:
    from harness.paths import out_dir
    from harness.store import Index

    folders = []
    for name in args.shards:
        path = Path(name)
        if not path.is_dir() and "/" not in name and (out_dir(args.out) / "runs.db").exists():
            path = Path(Index(out_dir(args.out)).get(name)["dir"])  # a run id (or a unique prefix of one)
        folders.append(path)
    merge(folders, args.out).show("json" if args.json else args.format)
    return 0


def add_run_options(parser) -> None:
    """``harness run``'s flags for splitting one evaluation."""
    parser.add_argument("--shard", metavar="I/N", help="score only shard I of N of the samples (then: harness merge)")
    parser.add_argument(
        "--executor", choices=("local", "ray"), default="local", help="ray: run --shards N shards as Ray actors"
    )
    parser.add_argument("--shards", type=int, metavar="N", help="with --executor ray: how many shards to split into")
    parser.add_argument(
        "--shard-gpus", type=float, default=0, metavar="G", help="with --executor ray: GPUs each shard's actor takes"
    )


def run_command(args, request: RunRequest, fmt: str) -> int | None:
    """``harness run`` with --shard or --executor ray (None: neither, an ordinary run)."""
    ray = args.executor == "ray"
    if not ray and (args.shards is not None or args.shard_gpus):
        raise UsageError("--shards and --shard-gpus need --executor ray (or run each --shard i/N and harness merge)")
    if ray and args.shard:
        raise UsageError("--shard i/N runs one shard here, --executor ray --shards N runs all of them; give one")
    if ray and (args.shards is None or args.shards < 1):
        raise UsageError("--executor ray needs --shards N (N >= 1): how many shards to split the samples into")
    if not ray and not args.shard:
        return None
    from harness.presets import load_presets
    from harness.runs import resolve_task
    from harness.suite import is_suite
    from harness.sweep.spec import is_sweep

    if is_suite(args.task, load_presets(args.include_path)) or is_sweep(resolve_task(args.task, args.include_path)[0]):
        raise UsageError(f"--task {args.task} is a suite or a sweep; shard one evaluation at a time")
    if ray:
        from harness.shards_ray import run_on_ray

        run_on_ray(request, args.shards, args.shard_gpus).show(fmt)
    else:
        from harness.runs import run

        run(request).show(fmt)
    return 0
