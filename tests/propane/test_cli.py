"""harness optimize and harness run --task propane_transfer end to end, in subprocesses, as a user runs them.

The model is the tiny random Llama folder behind the ``local:`` scheme of tests/propane/tiny.py (loaded with
``-p tiny``), so the test does not depend on the hf backend's conversion cache.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def propane_env() -> dict:
    """The environment of a user who put the tests/propane folder on PYTHONPATH (for ``-p tiny``)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(HERE), env.get("PYTHONPATH", "")] if p)
    return env


def run_harness(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=env or propane_env())


def test_optimize_then_transfer_to_another_model(tiny_folder, tmp_path):
    from tiny import save_tiny_llama

    other = save_tiny_llama(tmp_path / "other", seed=1)
    out = tmp_path / "runs"
    result = run_harness("-p", "tiny", "optimize", "--optimizer", "propane", "--model", f"local:{tiny_folder}",
                         "--target-prompt", "The cat sat", "--steps", "3", "--prompt-len", "3", "--n-docs", "4",
                         "--doc-len", "4", "--topk", "16", "--batch-size", "6", "--no-cache", "--out", out, "--json",
                         env=propane_env())
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    folder = Path(report["dir"])
    metrics = report["metrics"]
    assert metrics["kl_heldout_best"] <= metrics["kl_heldout_initial"]
    for name in ("kl_heldout_initial_stderr", "kl_heldout_best_stderr", "steps_per_second"):
        assert name in metrics
    best = json.loads((folder / "best_prompt.json").read_text())
    assert len(best["token_ids"]) == 3 and best["target_prompt"] == "The cat sat"
    series = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in series] == [0, 1, 2, 3] and all("kl_heldout" in r for r in series)
    assert (folder / "kl_curve.png").stat().st_size > 1000
    assert len((folder / "documents.jsonl").read_text().splitlines()) == 8

    result = run_harness("-p", "tiny", "run", "--task", "propane_transfer", "--model", f"local:{other}",
                         "--task-args", f"source={report['run_id']},n_docs=4", "--no-cache", "--out", out, "--json",
                         env=propane_env())
    assert result.returncode == 0, result.stderr
    transfer = json.loads(result.stdout)["metrics"]
    assert {"kl_transfer", "kl_transfer_stderr", "agreement_transfer", "kl_init"} <= set(transfer)
    board = run_harness("leaderboard", "--out", out, "--format", "json", env=propane_env())
    assert "propane_transfer/kl_transfer" in board.stdout


def test_usage_errors_exit_2(tiny_folder, tmp_path):
    result = run_harness("-p", "tiny", "optimize", "--optimizer", "propane", "--model", f"local:{tiny_folder}",
                         "--no-cache", "--out", tmp_path, env=propane_env())
    assert result.returncode == 2 and "--target-prompt" in result.stderr
    result = run_harness("-p", "tiny", "run", "--task", "propane_transfer", "--model", f"local:{tiny_folder}",
                         "--task-args", "source=nope", "--no-cache", "--out", tmp_path, env=propane_env())
    assert result.returncode == 2 and "unknown run 'nope'" in result.stderr
