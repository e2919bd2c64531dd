"""Ray fixtures shared by tests/test_sweep.py and tests/test_shards_ray.py (tox -e ray): the environment a Ray
test runs its commands in, a one-node cluster started as a user's head node, and the workers running a point or a
shard (each logs its pid first thing, in its temporary folder under the workers' TMPDIR, ``tmp_path/tmp``)."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cli_helpers import harness_env


@pytest.fixture
def ray_env(tmp_path):
    """The harness env with Ray's files (~/.ray, its session folder) and the response cache under tmp_path; the
    workers' TMPDIR (their temporary run folders and logs) is tmp_path/tmp."""
    pytest.importorskip("ray")
    (tmp_path / "home").mkdir()
    (tmp_path / "tmp").mkdir()
    ray_temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # Ray's socket paths must stay under 107 characters
    yield harness_env(
        HOME=str(tmp_path / "home"),
        HARNESS_CACHE=os.environ.get("HARNESS_CACHE", str(tmp_path / "cache")),
        RAY_USAGE_STATS_ENABLED="0",
        RAY_TMPDIR=ray_temp,
        TMPDIR=str(tmp_path / "tmp"),
    )
    subprocess.run(["rm", "-rf", ray_temp], check=False)


@pytest.fixture
def ray_head(ray_env):
    """A 2-CPU Ray cluster started as a user would (``ray start --head``); yields its address for RAY_ADDRESS."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    head = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", f"--port={port}", "--num-cpus=2"]
        + ["--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={ray_env['RAY_TMPDIR']}"],
        env=ray_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        for line in head.stdout:
            if "Ray runtime started" in line:
                break
        else:
            raise AssertionError("ray start --head exited before the cluster came up")
        yield f"127.0.0.1:{port}"
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(head.pid, sig)
                head.wait(timeout=10)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        head.wait()


def live_workers(tmp: Path, pattern: str) -> list[int]:
    """The pids of live Ray workers whose log matches ``pattern`` under ``tmp`` (``harness-shard-*/shard.log``,
    ``harness-point-*/point.log``): each writes ``(on HOST, pid N)`` first thing."""
    pids = []
    for log in tmp.glob(pattern):
        try:
            pids += [int(log.read_text().split(", pid ")[1].split(")")[0])]
        except (OSError, IndexError):
            pass
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]
