"""docs/results/regenerate.py re-runs a record's command and writes the new run's files over the record."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from cli_helpers import run_harness

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs/results/regenerate.py"


def test_a_damaged_record_is_regenerated_from_its_command(tmp_path):
    done = run_harness(
        "run",
        "--task",
        "graph_cot",
        "--model",
        "baseline:random-path",
        "--task-args",
        "depth=2,examples=40,samples=2",
        "--out",
        tmp_path / "first",
        "--no-cache",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run = next((tmp_path / "first").glob("graph_cot-*"))
    record = tmp_path / "results" / "graph_cot" / "baseline"
    record.mkdir(parents=True)
    for name in ("config.yaml", "metrics.json"):
        shutil.copy(run / name, record / name)
    original = json.loads((record / "metrics.json").read_text())
    (record / "metrics.json").write_text("{}")

    listed = subprocess.run(
        [sys.executable, SCRIPT, "--list", "--results", tmp_path / "results"], capture_output=True, text=True
    )
    assert "baseline:random-path" in listed.stdout and "graph_cot/baseline" in listed.stdout
    again = subprocess.run(
        [sys.executable, SCRIPT, "baseline", "--results", tmp_path / "results"], capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((record / "metrics.json").read_text()) == original  # same command and seed, same numbers
    assert not (record / "samples.jsonl").exists()  # only the files the record keeps
    nothing = subprocess.run(
        [sys.executable, SCRIPT, "nothing", "--results", tmp_path / "results"], capture_output=True
    )
    assert nothing.returncode == 2
