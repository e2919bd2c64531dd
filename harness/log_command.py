"""``harness log RUN --to NAME``: send a recorded run to an experiment tracker afterwards (the tracker was down
during the run, or the run was made without ``--log``). A sweep goes with its points, as the sweep's children."""

from __future__ import annotations

import sys
from pathlib import Path

from harness import tracking
from harness.errors import UsageError
from harness.paths import out_dir
from harness.store import Index, read_jsonl

HELP = "send a recorded run (a sweep with its points) to an experiment tracker: mlflow, wandb, tensorboard"


def configure(parser) -> None:
    parser.add_argument("run_id", metavar="RUN", help="the run's id or a unique prefix (see harness runs)")
    parser.add_argument(
        "--to", action="append", required=True, metavar="NAME", help="the tracker, e.g. mlflow (repeatable)"
    )
    parser.add_argument("--out", help="results folder (default ./runs or $HARNESS_OUT)")


def handler(args) -> int:
    names = tracking.selected(args.to)
    tracking.check(names)
    index = Index(out_dir(args.out))
    if not index.path.exists():
        raise UsageError(f"no runs in {index.path.parent}: give the results folder with --out")
    row = index.get(args.run_id)
    if row["status"] == "running":
        raise UsageError(f"run {row['run_id']} is still running: send it when it has ended")
    ok = send(row, names)
    points = []
    if str(row.get("task", "")).startswith("sweep:"):  # its points, as children of the sweep
        points = list(
            dict.fromkeys(r["run_id"] for r in read_jsonl(Path(row["dir"]) / "samples.jsonl") if r.get("run_id"))
        )
        for point in points:
            ok &= send(index.get(point), names, parent=row["run_id"])
    what = row["run_id"] + (f" and its {len(points)} points" if points else "")
    print(f"sent {what} to {', '.join(names)}" if ok else f"sending {what} failed (see above)", file=sys.stderr)
    return 0 if ok else 1


def send(row: dict, names: list[str], parent: str | None = None) -> bool:
    """One indexed run to the trackers; whether every tracker took it."""
    status = {"shard": "finished"}.get(row["status"], row["status"])
    return len(tracking.replay_folder(Path(row["dir"]), names, status, row.get("error") or "", parent)) == len(names)
