import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUPPORT = Path(__file__).resolve().parent / "support"
sys.path.insert(0, str(SUPPORT))  # test plugins for in-process tests


def harness_env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SUPPORT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.update(extra)
    return env


def run_harness(*args, timeout: float = 600, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """Run the installed CLI in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env or harness_env(), cwd=cwd)


@pytest.fixture
def cli(tmp_path):
    """``cli(*args)`` runs harness with --out pointing at a fresh folder for commands that take it."""

    def call(*args, **kwargs):
        return run_harness(*args, **kwargs)

    call.out = tmp_path / "runs"
    return call
