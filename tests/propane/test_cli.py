"""harness optimize and harness run --task propane_transfer end to end, in subprocesses, as a user runs them.

The models are tiny random Llama folders served by the real hf backend (``--model hf:DIR``) behind the response
cache, which lives in a per-test $HARNESS_CACHE.
"""

import json
from pathlib import Path

import pytest
from cli_helpers import harness_env, run_harness


def test_optimize_then_transfer_to_another_model(tiny_folder, tmp_path):
    from tiny import save_tiny_llama

    other = save_tiny_llama(tmp_path / "other", seed=1)
    out, env = tmp_path / "runs", harness_env(HARNESS_CACHE=str(tmp_path / "cache"))
    result = run_harness(
        "optimize",
        "--optimizer",
        "propane",
        "--model",
        f"hf:{tiny_folder}",
        "--args",
        "target_prompt=The cat sat,steps=3,prompt_len=3,n_docs=4,doc_len=4,topk=16,batch_size=6",
        "--out",
        out,
        "--json",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cache" / "responses.db").exists()  # the run went through the response cache
    report = json.loads(result.stdout)
    folder = Path(report["dir"])
    metrics = report["metrics"]
    for name in ("kl_heldout_initial_stderr", "kl_heldout_best_stderr", "steps_per_second"):
        assert name in metrics
    best = json.loads((folder / "best_prompt.json").read_text())
    assert len(best["token_ids"]) == 3 and best["target_prompt"] == "The cat sat"
    series = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in series] == [0, 1, 2, 3] and all("kl_heldout" in r for r in series)
    # the search keeps the prompt with the lowest training KL (the held-out KL of 3 steps on 4 documents may not move)
    assert metrics["kl_train_best"] <= series[0]["kl_train"] + 1e-6
    assert (folder / "kl_curve.png").stat().st_size > 1000
    assert len((folder / "documents.jsonl").read_text().splitlines()) == 8

    result = run_harness(
        "run",
        "--task",
        "propane_transfer",
        "--model",
        f"hf:{other}",
        "--task-args",
        f"source={report['run_id']},n_docs=4",
        "--out",
        out,
        "--json",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    transfer = json.loads(result.stdout)["metrics"]
    assert {"kl_transfer", "kl_transfer_stderr", "agreement_transfer", "kl_init"} <= set(transfer)
    board = run_harness("leaderboard", "--out", out, "--format", "json", env=env)
    assert f"propane_transfer[source={report['run_id']}]/kl_transfer" in board.stdout


def test_usage_errors_exit_2(tiny_folder, tmp_path):
    env = harness_env(HARNESS_CACHE=str(tmp_path / "cache"))
    result = run_harness(
        "optimize", "--optimizer", "propane", "--model", f"hf:{tiny_folder}", "--out", tmp_path, env=env
    )
    assert result.returncode == 2 and "target_prompt=" in result.stderr
    result = run_harness(
        "optimize",
        "--optimizer",
        "propane",
        "--model",
        f"hf:{tiny_folder}",
        "--out",
        tmp_path,
        "--args",
        "target_prompt=x,step=3",
        env=env,
    )
    assert result.returncode == 2 and "did you mean 'steps'" in result.stderr
    result = run_harness(
        "run",
        "--task",
        "propane_transfer",
        "--model",
        f"hf:{tiny_folder}",
        "--task-args",
        "source=nope",
        "--out",
        tmp_path,
        env=env,
    )
    assert result.returncode == 2 and "unknown run 'nope'" in result.stderr


def test_soft_run_reports_the_kl_of_the_prompt_it_writes(tiny_lm, tiny_folder, tmp_path):
    """best_prompt.json holds the projected token ids; kl_heldout_best is theirs, the continuous prompt's KL is
    kl_heldout_soft_best (before the fix, kl_heldout_best was the continuous prompt's)."""
    from harness.plugins.propane.problem import Problem, Settings

    options = dict(target_prompt="The cat sat", steps=4, prompt_len=3, n_docs=4, doc_len=4)
    result = run_harness(
        "optimize",
        "--optimizer",
        "propane-soft",
        "--model",
        f"hf:{tiny_folder}",
        "--args",
        ",".join(f"{k}={v}" for k, v in options.items()) + ",lr=0.2",
        "--out",
        tmp_path / "runs",
        "--json",
        env=harness_env(HARNESS_CACHE=str(tmp_path / "cache")),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    metrics, best = report["metrics"], json.loads((Path(report["dir"]) / "best_prompt.json").read_text())
    written = Problem(tiny_lm, Settings(**options), seed=0).heldout_kl(best["token_ids"])[0]
    assert metrics["kl_heldout_best"] == pytest.approx(written, abs=1e-4) == best["kl_heldout"]
    assert abs(metrics["kl_heldout_soft_best"] - written) > 1e-3  # a different prompt, a different number
