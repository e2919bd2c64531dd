"""``harness run --executor ray --shards N``: the shards of one evaluation as Ray actors, merged on the driver.

Each shard is the same run ``harness run --shard i/N`` makes, done by an actor that loads the engine once; its run
folder comes back as bytes into the driver's ``--out`` (so workers need no shared disk) as soon as it finishes.
``RAY_ADDRESS`` joins an existing cluster, else a local one starts. An actor that dies is restarted and its shard
run again from scratch (it lands once: the driver writes a shard's folder only when its call returns); shards already
in ``--out`` are not run again, so a killed driver resumes; then :func:`harness.shards.merge` joins them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import sys
import tempfile
from pathlib import Path

from harness.errors import UsageError
from harness.runs import RunRequest, RunResult

RETRIES = 3  # restarts of a shard's actor that died (kill -9, a lost node), each retrying its shard


class ShardWorker:
    """A Ray actor that runs one shard: the engine it loads stays in the actor (a retried call reuses it)."""

    def __init__(self):
        self.engines: dict = {}

    def run(self, request: RunRequest) -> dict:
        """Run the shard into a temporary ``--out`` on this node; its run id, files and primary metric."""
        from harness.runs import run
        from harness.sweep.executors import run_files

        with tempfile.TemporaryDirectory(prefix="harness-shard-") as tmp:
            (Path(tmp) / "shard.log").write_text(f"(on {os.uname().nodename}, pid {os.getpid()})\n")
            result = run(dataclasses.replace(request, out=tmp), self.engines)
            return {"run_id": result.run_id, "files": run_files(result.dir), "primary_metric": result.primary_metric}


def run_on_ray(request: RunRequest, count: int, gpus: float = 0) -> RunResult:
    """Run the shards of ``request`` not yet in its ``--out`` on Ray, then merge all ``count`` of them."""
    from harness.paths import out_dir
    from harness.registry import get_plugins
    from harness.runs import prepare
    from harness.shards import merge
    from harness.store import run_id
    from harness.sweep.executors import check_ray

    check_ray()
    out = out_dir(request.out)
    common = dataclasses.replace(
        request,
        task=resolved(request.task),
        include_paths=[str(Path(folder).resolve()) for folder in request.include_paths],
        quiet=True,
        command=request.command or shlex.join(["harness"] + sys.argv[1:]),
        plugin_modules=request.plugin_modules or list(get_plugins().extra_modules),
    )
    requests = [dataclasses.replace(common, shard=(i, count)) for i in range(count)]
    _, identity = prepare(requests[0])  # refuses a task that does not split, before a cluster starts
    folders = [out / run_id({**identity, "shard": {"index": i, "count": count}}) for i in range(count)]
    todo = [i for i in range(count) if not (folders[i] / "metrics.json").is_file()]
    if len(todo) < count:
        print(f"{count - len(todo)} of {count} shards recorded before in {out}; {len(todo)} to run", file=sys.stderr)
    if todo:
        run_shards(requests, todo, folders, gpus)
    return merge(folders, out, command=common.command)


def resolved(task: str) -> str:
    """A task YAML's path made absolute: a Ray worker does not start in the driver's working directory."""
    path = Path(task).expanduser()
    return str(path.resolve()) if path.suffix in (".yaml", ".yml") and path.is_file() else task


def run_shards(requests: list[RunRequest], todo: list[int], folders: list[Path], gpus: float) -> None:
    """One actor per shard in ``todo``; each shard's folder is written into ``folders[i]`` as it comes back. A shard
    that fails for good does not stop the others from landing; its error is raised after them."""
    errors: list[BaseException] = []
    with contextlib.redirect_stdout(sys.stderr):  # Ray prints its workers' deaths: stdout carries only the result
        collect(requests, todo, folders, gpus, errors)
    if errors:
        raise errors[0]


def collect(requests: list[RunRequest], todo: list[int], folders: list[Path], gpus: float, errors: list) -> None:
    """Start Ray, run the shards, write each into its folder as it returns; a shard's final error goes to
    ``errors``."""
    import ray
    from tqdm import tqdm

    from harness.sweep.executors import start_ray, store_returned_run

    count = len(requests)
    start_ray(os.environ.get("RAY_ADDRESS"))
    try:
        actor = ray.remote(num_cpus=1, num_gpus=gpus, max_restarts=RETRIES, max_task_retries=RETRIES)(ShardWorker)
        actors = {i: actor.remote() for i in todo}
        futures = {actors[i].run.remote(requests[i]): i for i in todo}
        with tqdm(total=count, initial=count - len(todo), desc="shards", unit="shard", file=sys.stderr) as bar:
            while futures:
                (ready,), _ = ray.wait(list(futures), num_returns=1)
                i = futures.pop(ready)
                try:
                    returned = ray.get(ready)
                except ray.exceptions.RayTaskError as exc:  # the shard's own error (a bad --limit, a task's bug)
                    cause = getattr(exc, "cause", None) or exc
                    failed = RuntimeError(f"shard {i}/{count}: {type(cause).__name__}: {cause}")
                    errors.append(cause if isinstance(cause, UsageError) else failed)
                    continue
                except ray.exceptions.RayError as exc:  # retries used up, or the actor could not start
                    errors.append(RuntimeError(f"shard {i}/{count} failed after {RETRIES} retries: {exc}"))
                    continue
                finally:
                    ray.kill(actors.pop(i))  # its engine goes with it
                if returned["run_id"] != folders[i].name:
                    raise RuntimeError(
                        f"shard {i}/{count} came back as run {returned['run_id']}, not {folders[i].name}: "
                        "the workers run another harness version"
                    )
                store_returned_run(folders[i].parent, returned)
                bar.update(1)
    finally:
        ray.shutdown()
