"""propane_transfer from a propane_suite: every target's found prompts scored on another tiny Llama, paired by
prompt against random prompts; the statistics are recomputed here from the run's own samples."""

import json
from pathlib import Path

import pytest
from cli_helpers import harness_env, run_harness
from harness.plugins.propane.suite import sign_test

from harness.errors import UsageError
from harness.evaluation import mean_stderr


def run(*argv, env):
    result = run_harness(*argv, "--json", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_a_suites_prompts_on_another_model(tiny_folder, tmp_path):
    from tiny import save_tiny_llama

    other = save_tiny_llama(tmp_path / "other", seed=1)
    out, env = tmp_path / "runs", harness_env(HARNESS_CACHE=str(tmp_path / "cache"))
    args = "n_prompts=3,steps=2,prompt_len=3,topk=16,n_docs=4,n_heldout=4,doc_len=4,batch_size=6,eval_every=2"
    suite = run(
        "run", "--task", "propane_suite", "--model", f"hf:{tiny_folder}", "--task-args", args, "--out", out, env=env
    )
    folder = suite["dir"]
    report = run(
        "run",
        "--task",
        "propane_transfer",
        "--model",
        f"hf:{other}",
        "--task-args",
        f"source={folder},n_docs=4,n_random=3",
        "--out",
        out,
        env=env,
    )
    m = report["metrics"]
    rows = [json.loads(line) for line in (Path(report["dir"]) / "samples.jsonl").read_text().splitlines()]
    assert m["prompts"] == len(rows) == 3
    for name in ("transfer", "random", "init", "random_prompts"):
        assert (m[f"kl_{name}"], m[f"kl_{name}_stderr"]) == pytest.approx(mean_stderr([r[f"kl_{name}"] for r in rows]))
    assert all(len(r["text_random_prompts"]) == 3 and len(r["text_transfer"]) == 1 for r in rows)
    diff = [r["kl_transfer"] - r["kl_random_prompts"] for r in rows]
    assert m["diff_transfer_random_prompts"] == pytest.approx(sum(diff) / 3)
    wins, losses = sum(d < 0 for d in diff), sum(d > 0 for d in diff)
    assert (m["wins_transfer_random_prompts"], m["losses_transfer_random_prompts"]) == (wins, losses)
    assert m["sign_p_transfer_random_prompts"] == sign_test(wins, losses)
    assert m["closed_transfer"] == pytest.approx(1 - m["kl_transfer"] / m["kl_random_prompts"])
    source = [json.loads(line) for line in (Path(folder) / "samples.jsonl").read_text().splitlines()]
    propane = [s for s in source if s["method"] == "propane"]
    assert m["kl_transfer_on_source"] == pytest.approx(sum(s["kl_heldout_best"] for s in propane) / 3)
    assert m["kl_train_transfer_on_source"] == pytest.approx(sum(s["kl_train_best"] for s in propane) / 3)
    assert m["kl_init_on_source"] == pytest.approx(sum(s["kl_heldout_initial"] for s in propane) / 3)
    assert (Path(report["dir"]) / "transfer_kl.png").stat().st_size > 5000


def test_a_source_without_prompts_is_a_usage_error(tmp_path):
    from harness.plugins.propane.transfer import TransferTask

    with pytest.raises(UsageError, match="neither best_prompt.json nor a propane_suite"):
        TransferTask(source=str(tmp_path)).targets(tmp_path)
    with pytest.raises(UsageError, match="n_random=-1"):
        TransferTask(source="x", n_random=-1)


def test_seed_in_the_source_names_that_seeds_search(tmp_path):
    """``source=.../seed{seed}``: a sweep's seed-s transfer reads seed s's search (and only it)."""
    from harness.plugins.propane.transfer import TransferTask

    (tmp_path / "seed0").mkdir()
    (tmp_path / "seed1").mkdir()
    record = {"target_prompt": "Tell me a joke.", "text": "joke tell", "init": "! !", "doc_len": 4, "method": "propane"}
    (tmp_path / "seed1" / "best_prompt.json").write_text(json.dumps(record))
    task = TransferTask(source=str(tmp_path / "seed{seed}"))
    targets, suite = task.targets(tmp_path, seed=1)
    assert not suite and targets[0].prompt == "Tell me a joke."
    assert [c.text for c in targets[0].candidates] == ["joke tell", "! !"]
    with pytest.raises(UsageError, match=r"seed0: .* has neither best_prompt.json"):
        task.targets(tmp_path, seed=0)
