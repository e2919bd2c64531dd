"""Where a sweep's points run: local worker processes, or Ray tasks. Either way a point is one call of
:func:`harness.runs.run` with the point's request; the driver learns its run id from the call's return value and
reads the record from the store, never from a child's printed output."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from harness.errors import UsageError, missing_extra
from harness.runs import RunRequest
from harness.sweep.spec import Point

Done = Callable[[Point, "str | None", str], None]  # (point, run id or None when it failed, its log's path)


def run_point(request: RunRequest, log: str) -> str:
    """In a worker process: run one point with its output (and its subprocesses') in ``log``; its run id."""
    from harness.runs import run
    from harness.workers import die_with_parent

    die_with_parent()
    with open(log, "a") as f:
        f.write(f"$ {request.command}\n")
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    sys.stdout.flush(), sys.stderr.flush()
    os.dup2(fd, 1), os.dup2(fd, 2)
    try:
        return run(request).run_id
    except BaseException:
        traceback.print_exc()
        raise


def run_locally(sweep, todo: list[Point], done: Done, logs: Path) -> None:
    """Up to ``workers`` points at once, each in a fresh spawned process that dies with this one."""
    from concurrent.futures import as_completed

    from harness.workers import process_pool

    logs.mkdir(exist_ok=True)
    with process_pool(min(sweep.workers, len(todo)), max_tasks_per_child=1) as pool:  # closed on Ctrl-C/SIGTERM
        futures = {}
        for point in todo:
            log = logs / f"{file_name(point.id)}.log"
            log.write_text("")
            futures[pool.submit(run_point, sweep.request(point), str(log))] = (point, log)
        for future in as_completed(futures):
            point, log = futures[future]
            done(point, None if future.exception() else future.result(), str(log))


def check_ray() -> None:
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise missing_extra("--executor ray", "Ray", "ray")


def run_on_ray(sweep, todo: list[Point], done: Done, logs: Path) -> None:
    """Each point as a Ray task (``max_retries``: a point whose worker dies runs again); its run folder comes back
    as bytes and is written into the driver's ``--out`` under its run id, so writing it twice changes nothing."""
    import ray

    logs.mkdir(exist_ok=True)
    start_ray(sweep.options.ray_address)
    try:
        remote = ray.remote(num_cpus=sweep.threads, max_retries=3)(run_point_in_temp_dir)
        queue, futures = list(todo), {}
        in_flight = sweep.spec.workers or len(todo)
        while queue or futures:
            while queue and len(futures) < in_flight:
                point = queue.pop(0)
                futures[remote.remote(sweep.request(point))] = point
            (ready,), _ = ray.wait(list(futures), num_returns=1)
            point = futures.pop(ready)
            try:
                returned = ray.get(ready)
            except ray.exceptions.RayError as exc:  # retries used up, or the task could not run at all
                returned = {"run_id": None, "log": f"{type(exc).__name__}: {exc}"}
            log = logs / f"{file_name(point.id)}.log"
            log.write_text(returned["log"])
            run_id = store_returned_run(sweep.out, returned) if returned["run_id"] else None
            done(point, run_id, str(log))
    finally:
        ray.shutdown()


def start_ray(address: str | None) -> None:
    """Connect to the cluster at ``address`` (None: start a local one).

    Ray puts the driver's working directory first on its workers' ``sys.path``: started from a checkout with
    harness installed as a package, the workers would import the checkout's ``harness/`` (which lacks the
    installed package's ``harness.tasks`` and ``harness.plugins``). So the driver connects from the folder that
    holds the ``harness`` it imported: the workers import the same one.
    """
    import ray

    import harness

    try:
        with contextlib.chdir(Path(harness.__file__).resolve().parent.parent):
            ray.init(**({"address": address} if address else {"include_dashboard": False}), log_to_driver=False)
    except ConnectionError as exc:
        reason = str(exc).splitlines()[0]
        raise UsageError(
            f"--ray-address {address}: {reason}; start the cluster (ray start --head) or fix the "
            "address (with token authentication, export RAY_AUTH_MODE=token)"
        ) from None


def run_point_in_temp_dir(request: RunRequest) -> dict:
    """On a Ray worker: run the point in a child process (``python -m harness.sweep.executors``; a process
    spawned through multiprocessing would re-run the worker's own entry point) in a temporary ``--out``, and read
    its run from that folder's index; return the run's files (path -> bytes) and primary metric."""
    import dataclasses
    import pickle
    import subprocess

    from harness.store import Index
    from harness.workers import die_with_parent

    with tempfile.TemporaryDirectory(prefix="harness-point-") as tmp:
        log, job, out = Path(tmp) / "point.log", Path(tmp) / "request.pickle", Path(tmp) / "out"
        log.write_text(f"(on {os.uname().nodename}, pid {os.getpid()})\n")
        job.write_bytes(pickle.dumps(dataclasses.replace(request, out=str(out))))
        command = [sys.executable, "-m", "harness.sweep.executors", str(job), str(log)]
        done = subprocess.run(command, preexec_fn=die_with_parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rows = Index(out).runs("finished") if (out / "runs.db").exists() else []
        if done.returncode != 0 or len(rows) != 1:
            return {"run_id": None, "log": log.read_text()}
        run_id = rows[0]["run_id"]
        return {
            "run_id": run_id,
            "log": log.read_text(),
            "files": run_files(out / run_id),
            "primary_metric": rows[0]["primary_metric"],
        }


def run_files(folder: Path) -> dict[str, bytes]:
    """A finished run folder's files (path -> bytes), to send back from a worker to the driver's ``--out``."""
    return {
        str(f.relative_to(folder)): f.read_bytes()
        for f in sorted(folder.rglob("*"))
        if f.is_file() and f.name != ".lock" and not f.name.endswith(".tmp")
    }


def store_returned_run(out: Path, returned: dict) -> str:
    """Write a run folder that came back from a worker into ``out`` and index it there, finished, with this
    process's store code (the worker's harness may be another version); its run id."""
    import json

    import yaml

    from harness.store import Run, write_bytes_atomic

    files = returned["files"]
    folder = out / returned["run_id"]
    for name, data in files.items():
        if name != "metrics.json":  # written last, by Run.finish: it marks the run finished
            write_bytes_atomic(folder / name, data)
    run = Run(out, returned["run_id"], yaml.safe_load(files["config.yaml"]) or {})
    run.finish(json.loads(files["metrics.json"]), returned["primary_metric"])
    return run.id


def file_name(text: str) -> str:
    import re

    return re.sub(r"[^\w.=,-]+", "_", text)[:150]


if __name__ == "__main__":  # a Ray point's child process: REQUEST_PICKLE LOG
    import pickle

    run_point(pickle.loads(Path(sys.argv[1]).read_bytes()), sys.argv[2])
