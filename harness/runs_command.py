"""``harness runs``: the runs of an output folder (id, task, model, status, headline metric, started, duration,
why a run failed), and ``harness runs rm ID... | --failed`` to delete runs (index row and folder)."""

from __future__ import annotations

import fcntl
import shutil
import time
from pathlib import Path

from harness import report
from harness.errors import UsageError
from harness.paths import out_dir
from harness.store import Index

HELP = "list runs (id, task, model, status, headline metric, started, duration, error); runs rm ID... deletes"
COLUMNS = ["run", "task", "model", "status", "headline", "limit", "started", "duration", "error"]


def configure(parser) -> None:
    parser.add_argument("--out", help="results folder (default ./runs or $HARNESS_OUT)")
    parser.add_argument("--status", help="only runs with this status (finished, shard, failed, interrupted, running)")
    parser.add_argument("--format", choices=report.FORMATS, default="table")
    actions = parser.add_subparsers(dest="runs_action", metavar="rm")
    remove = actions.add_parser("rm", help="delete runs: their index rows and folders")
    remove.add_argument("ids", nargs="*", metavar="ID", help="run ids (a unique prefix is enough)")
    remove.add_argument("--failed", action="store_true", help="delete every failed or interrupted run")
    remove.add_argument("--out", dest="rm_out", help="results folder (default ./runs or $HARNESS_OUT)")


def handler(args) -> int:
    out = out_dir(getattr(args, "rm_out", None) or args.out)
    if not (out / "runs.db").exists():
        raise UsageError(f"no runs in {out}: run a task first (harness run --task ...) or pass --out DIR")
    index = Index(out)
    if args.runs_action == "rm":
        return remove(index, out, args.ids, args.failed)
    runs = index.runs(args.status)
    print(report.render([summary(r) for r in runs], COLUMNS, args.format))
    return 0


def summary(run: dict) -> dict:
    """One line of ``harness runs`` (and of the site's run list)."""
    metric = run.get("primary_metric")
    value = run["metrics"].get(metric) if metric else None
    headline = ""
    if isinstance(value, int | float):
        stderr = run["metrics"].get(f"{metric}_stderr")
        headline = f"{metric}={report.fmt_value(value)}" + (
            f" ± {report.fmt_value(stderr)}" if isinstance(stderr, int | float) else ""
        )
    ended = run.get("finished") if run["status"] != "running" else None
    return {
        "run": run["run_id"],
        "task": run["task"],
        "model": report.model_label(run),
        "status": run["status"],
        "headline": headline,
        "limit": run.get("run_limit") or "",
        "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(run["created"])),
        "duration": _duration(ended - run["created"]) if ended else "",
        "error": run.get("error") or "",
    }


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


def remove(index: Index, out: Path, ids: list[str], failed: bool) -> int:
    if not ids and not failed:
        raise UsageError("harness runs rm: name runs (harness runs rm ID...) or pass --failed")
    targets = [index.get(i) for i in ids]
    if failed:
        targets += [r for r in index.runs() if r["status"] in ("failed", "interrupted")]
    for run in {r["run_id"]: r for r in targets}.values():
        folder = Path(run["dir"])
        if folder.is_dir() and _is_running(folder):
            raise UsageError(f"run {run['run_id']} is running in another process; stop it first")
        if folder.is_dir() and folder.resolve().parent == out.resolve():  # never a folder outside --out
            shutil.rmtree(folder)
        index.remove(run["run_id"])
        print(f"removed {run['run_id']}")
    return 0


def _is_running(folder: Path) -> bool:
    lock = folder / ".lock"
    if not lock.exists():
        return False
    with open(lock) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False
