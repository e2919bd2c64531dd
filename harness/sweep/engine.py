"""Running a sweep: the sweep is a run of its own whose task runs the points (skipping finished ones) through an
executor and collects their records."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from harness.runs import RunRequest, RunResult, execute
from harness.store import read_json
from harness.sweep.collect import collect
from harness.sweep.executors import run_locally, run_on_ray
from harness.sweep.plan import Sweep, SweepOptions
from harness.sweep.spec import Point
from harness.tracking import replay_folder


def run_sweep(options: SweepOptions) -> RunResult:
    """Resolve and validate everything up front (exit 2 before any point starts), then run the sweep as a run."""
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
    request = RunRequest(
        task=identity["task"],
        out=sweep.out,
        use_cache=not options.no_cache,
        quiet=options.json,
        trackers=options.trackers,
    )
    return execute(SweepRun(sweep), identity, request)


class SweepRun:
    """The sweep as a task for :func:`harness.runs.execute`: it runs the points and returns the sweep's metrics."""

    name = "sweep"
    version = "1"
    primary_metric = None  # a sweep has no headline number: it is not a leaderboard row

    def __init__(self, sweep: Sweep):
        self.sweep = sweep

    def run(self, ctx) -> dict[str, float]:
        sweep = self.sweep
        sweep.parent = ctx.run.id
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

        def done(point: Point, run_id: str | None, log: str) -> None:
            result = finished_run(sweep.out, run_id) if run_id else None
            if result is None:
                failures[point.id] = log
            else:
                results[point.id] = result
                if sweep.options.executor == "ray":  # it ran in a temporary folder: the trackers get it from here
                    replay_folder(result["dir"], sweep.options.trackers, parent=ctx.run.id)
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
        "metrics": read_json(folder / "metrics.json", f"delete the folder {folder} to run that point again"),
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


def finished_run(out: Path, run_id: str) -> dict | None:
    """A point's run by id, when the store has it finished."""
    from harness.store import Index

    row = Index(out).get(run_id)
    return result_of(out, row) if row.get("status") == "finished" else None
