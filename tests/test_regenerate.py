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
    assert f"--out {tmp_path / 'first'}" in (record / "config.yaml").read_text()  # the command as it was recorded
    assert not (record / "samples.jsonl").exists()  # only the files the record keeps
    nothing = subprocess.run(
        [sys.executable, SCRIPT, "nothing", "--results", tmp_path / "results"], capture_output=True
    )
    assert nothing.returncode == 2


def test_a_gpu_record_is_skipped_where_there_is_no_gpu(tmp_path):
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the record would be regenerated")
    record = tmp_path / "results" / "graph_cot" / "gpu_depth"
    record.mkdir(parents=True)
    command = "harness run --task graph_cot --model scratch --task-args device=cuda,steps=5 --out x"
    (record / "config.yaml").write_text(f"command: {command}\ntask_args: {{device: cuda, steps: 5}}\n")
    (record / "metrics.json").write_text('{"evidence_accuracy": 0.9}')
    done = subprocess.run(
        [sys.executable, SCRIPT, "gpu", "--results", tmp_path / "results"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "skipped (made on a GPU" in done.stdout
    assert json.loads((record / "metrics.json").read_text()) == {"evidence_accuracy": 0.9}
