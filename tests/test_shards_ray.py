"""``harness run --executor ray --shards N`` (harness/shards_ray.py, tox -e ray): on a local Ray cluster the
shards of a dataset task on a real model and of a graph_cot evaluation merge into the single process's run; a
shard whose worker is killed -9 mid-way is retried and lands once; shards already in --out (one made by
``--shard i/N`` outside Ray, or by a driver killed -9 on a cluster joined by RAY_ADDRESS) are not run again."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import run_harness
from ray_cluster import live_workers

from harness.store import Index

ROOT = Path(__file__).resolve().parent.parent
REACHABILITY = "plugins/dataset_tasks/graph_reachability.yaml"  # relative, as typed in the checkout (ROOT)
LINE = ("-p", "harness_sweepplugin")  # tests/support: the model-free "line" task, y = a * (i + 1) + seed


def run_ok(env, *args) -> subprocess.CompletedProcess:
    result = run_harness(*args, env=env, timeout=900, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result


def run_files(run: dict) -> tuple[str, str]:
    folder = Path(run["dir"])
    return (folder / "samples.jsonl").read_text(), (folder / "metrics.json").read_text()


@pytest.mark.ray
@pytest.mark.parametrize("task", ["dataset", "graph_cot"])
def test_ray_shards_merge_into_the_single_run(task, tiny_folder, tmp_path, ray_env):
    """graph_reachability on the tiny Llama (per-sample loglikelihoods), and graph_cot evaluated with a baseline
    policy: 2 shards on Ray give the plain run's id, samples.jsonl and metrics.json; run again, nothing runs."""
    if task == "dataset":
        args = ["run", "--task", REACHABILITY, "--model", f"hf:{tiny_folder}", "--limit", 8, "--no-cache", "--json"]
    else:
        args = ["run", "--task", "graph_cot", "--model", "baseline:random-path", "--task-args", "examples=6,depth=2"]
        args += ["--no-cache", "--json"]
    single = json.loads(run_ok(ray_env, *args, "--out", tmp_path / "single").stdout)
    sharded = run_ok(ray_env, *args, "--out", tmp_path / "ray", "--executor", "ray", "--shards", 2)
    merged = json.loads(sharded.stdout)
    assert merged["run_id"] == single["run_id"] and merged["metrics"] == single["metrics"]
    assert run_files(merged) == run_files(single)
    assert "2/2" in sharded.stderr  # the progress bar over shards
    rows = {r["run_id"]: r["status"] for r in Index(tmp_path / "ray").runs()}
    shards = {f"{single['run_id']}-{i}of2": "shard" for i in range(2)}
    assert rows == {single["run_id"]: "finished", **shards}
    again = run_ok(ray_env, *args, "--out", tmp_path / "ray", "--executor", "ray", "--shards", 2)
    assert "2 of 2 shards recorded before" in again.stderr and "Ray instance" not in again.stderr
    assert json.loads(again.stdout) == merged


@pytest.mark.ray
def test_a_killed_shard_worker_is_retried_and_recorded_shards_are_kept(tmp_path, ray_env):
    """Shard 0/3 made beforehand with --shard 0/3 (as by another launcher, or a driver killed after it landed);
    the driver runs 1/3 and 2/3 on Ray, one of whose workers is killed -9 mid-way: Ray restarts it, the shard
    lands once, and the merge is the single run."""
    task = [*LINE, "run", "--task", "line", "--task-args", "n=9,delay=0.5", "--json"]
    out = tmp_path / "ray"
    single = json.loads(run_ok(ray_env, *task, "--out", tmp_path / "single").stdout)
    run_ok(ray_env, *task, "--shard", "0/3", "--out", out)
    driver = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *task, "--out", str(out), "--executor", "ray", "--shards", "3"],
        env=ray_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline, workers = time.time() + 300, []
    while not workers and time.time() < deadline and driver.poll() is None:
        time.sleep(0.1)
        workers = live_workers(tmp_path / "tmp", "harness-shard-*/shard.log")
    assert workers, "no shard worker started"
    assert "harness.cli" not in Path(f"/proc/{workers[0]}/cmdline").read_text()  # a Ray worker, not the driver
    os.kill(workers[0], signal.SIGKILL)
    stdout, stderr = driver.communicate(timeout=600)
    assert driver.returncode == 0, stderr
    assert "1 of 3 shards recorded before" in stderr
    (killed,) = (tmp_path / "tmp").glob("harness-shard-*")  # the finished shards' temporary folders are gone
    assert f", pid {workers[0]})" in (killed / "shard.log").read_text() and not (killed / single["run_id"]).exists()
    merged = json.loads(stdout)
    assert merged["run_id"] == single["run_id"] and run_files(merged) == run_files(single)
    for i in range(3):
        ids = [json.loads(line)["id"] for line in (out / f"{single['run_id']}-{i}of3" / "samples.jsonl").open()]
        assert ids == [f"ex{j}" for j in range(i, 9, 3)]  # each sample once


@pytest.mark.ray
def test_a_killed_driver_resumes_on_a_cluster_joined_by_ray_address(tmp_path, ray_env, ray_head):
    """RAY_ADDRESS joins a running cluster (2 CPUs: 2 of the 3 shards at once). kill -9 the driver once a shard has
    landed in --out; the same command again runs only the shards missing there, and merges the single run."""
    task = [*LINE, "run", "--task", "line", "--task-args", "n=9,delay=1", "--json"]
    out = tmp_path / "ray"
    single = json.loads(run_ok(ray_env, *task, "--out", tmp_path / "single").stdout)
    env = {**ray_env, "RAY_ADDRESS": ray_head}
    command = [sys.executable, "-m", "harness.cli", *task, "--out", str(out), "--executor", "ray", "--shards", "3"]
    driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not list(out.glob("*of3/metrics.json")) and time.time() < deadline and driver.poll() is None:
        time.sleep(0.05)
    driver.kill()
    driver.wait()
    landed = len(list(out.glob("*of3/metrics.json")))
    assert 1 <= landed < 3, landed  # killed with a shard in --out and another not
    again = run_ok(env, *task, "--out", out, "--executor", "ray", "--shards", 3)
    assert f"{landed} of 3 shards recorded before in {out}; {3 - landed} to run" in again.stderr
    assert "Started a local Ray instance" not in again.stderr  # it joined the cluster
    merged = json.loads(again.stdout)
    assert merged["run_id"] == single["run_id"] and run_files(merged) == run_files(single)
