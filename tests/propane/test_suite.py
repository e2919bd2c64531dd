"""propane_suite: the paired statistics on known inputs, the task end to end on a tiny Llama, bad args exit 2."""

import json
from pathlib import Path

import pytest
from cli_helpers import harness_env, run_harness
from harness.plugins.propane.suite import paired_summary, shipped_prompts, sign_test

from harness.errors import UsageError
from harness.evaluation import mean_stderr


def test_sign_test_is_the_exact_two_sided_binomial():
    assert sign_test(9, 1) == pytest.approx(2 * (1 + 10) / 2**10)
    assert sign_test(1, 9) == sign_test(9, 1)
    assert sign_test(10, 0) == pytest.approx(2 / 2**10)
    assert sign_test(3, 1) == pytest.approx(2 * (1 + 4) / 16)
    assert sign_test(5, 5) == 1.0 and sign_test(0, 0) == 1.0 and sign_test(2, 1) == 1.0


def test_paired_summary_on_known_values():
    start = [10.0, 10.0, 10.0, 8.0]
    initial = {"propane": start, "random": start}
    best = {"propane": [4.0, 6.0, 5.0, 3.0], "random": [5.0, 5.0, 7.0, 3.0]}
    train = {"propane": [1.0, 2.0, 3.0, 2.0], "random": [5.0, 5.0, 6.0, 3.0]}
    m = paired_summary(initial, best, train)
    assert m["kl_train_propane"] == 2.0 and m["kl_gap_propane"] == pytest.approx(2.5)  # held-out minus training
    assert m["kl_gap_propane_stderr"] == pytest.approx(mean_stderr([3, 4, 2, 1])[1])
    assert m["kl_initial"] == 9.5 and "kl_initial_propane" not in m  # one start, reported once
    assert (m["kl_reduction_propane"], m["kl_reduction_random"]) == (5.0, 4.5)
    assert m["kl_reduction_propane_stderr"] == pytest.approx(mean_stderr([6, 4, 5, 5])[1])  # reductions
    assert m["paired_kl_diff"] == pytest.approx(-0.5)  # PROPANE minus random: -1, +1, -2, 0
    assert m["paired_kl_diff_stderr"] == pytest.approx(mean_stderr([-1, 1, -2, 0])[1])
    assert (m["propane_wins"], m["propane_losses"], m["ties"]) == (2, 1, 1)
    assert m["sign_test_p"] == 1.0 and m["prompts"] == 4


def test_the_shipped_prompt_set():
    prompts = shipped_prompts()
    assert len(prompts) >= 8 and len(set(prompts)) == len(prompts)


KEYS = ("kl_heldout_best", "kl_train_best")


def test_warm_start_arms_start_from_the_original_and_from_random_tokens(tiny_folder, tmp_path):
    args = "arms=propane@original,propane@random,n_prompts=2,steps=2,prompt_len=0,topk=16,n_docs=4,n_heldout=4,"
    result = run_suite(tiny_folder, tmp_path, args + "doc_len=4,batch_size=6,eval_every=2")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    metrics, folder = report["metrics"], Path(report["dir"])
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    warm = [s for s in samples if s["init"] == "original"]
    cold = [s for s in samples if s["init"] == "random"]
    assert len(warm) == len(cold) == 2 and all(s["method"] == "propane" for s in samples)
    for w, c in zip(warm, cold):
        assert w["init_prompt"] == w["target_prompt"] and len(c["init_ids"]) == w["target_tokens"]
        assert w["kl_heldout_initial"] == pytest.approx(0.0, abs=1e-4)  # the original scores 0 by construction
        assert c["kl_heldout_initial"] > 0.0
    assert w["id"].endswith("/propane_from_original") and c["id"].endswith("/propane_from_random")
    assert {"kl_initial_propane_from_original", "kl_train_propane_from_random", "propane_from_original_wins"} <= set(
        metrics
    )
    assert "kl_initial" not in metrics  # the arms start apart: each start is reported


def run_suite(tiny_folder, tmp_path, task_args):
    return run_harness(
        "run",
        "--task",
        "propane_suite",
        "--model",
        f"hf:{tiny_folder}",
        "--task-args",
        task_args,
        "--out",
        tmp_path / "runs",
        "--json",
        env=harness_env(HARNESS_CACHE=str(tmp_path / "cache")),
    )


def test_suite_on_a_tiny_llama(tiny_folder, tmp_path):
    args = "n_prompts=3,steps=2,prompt_len=3,topk=16,n_docs=4,n_heldout=4,doc_len=4,batch_size=6,eval_every=2,workers=2"
    result = run_suite(tiny_folder, tmp_path, args)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    metrics, folder = report["metrics"], Path(report["dir"])
    samples = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6 and {s["target_prompt"] for s in samples} == set(shipped_prompts()[:3])
    assert all(s["loss_evaluations"] == 2 * 6 for s in samples)  # the same budget for both methods
    by = {(s["target_prompt"], s["method"]): s for s in samples}
    targets = shipped_prompts()[:3]
    initial = [by[(t, "propane")]["kl_heldout_initial"] for t in targets]
    assert initial == [by[(t, "random")]["kl_heldout_initial"] for t in targets]  # same documents, same start
    best, train = ({m: [by[(t, m)][key] for t in targets] for m in ("propane", "random")} for key in KEYS)
    expected = paired_summary({"propane": initial, "random": initial}, best, train)
    assert {k: metrics[k] for k in expected} == pytest.approx(expected)
    assert {"kl_train_propane", "kl_gap_random"} <= set(metrics)
    assert metrics["propane_wins"] + metrics["propane_losses"] + metrics["ties"] == 3
    for plot in ("paired_kl.png", "kl_train_curves.png"):
        assert (folder / plot).stat().st_size > 5000
    assert len((folder / "metrics.jsonl").read_text().splitlines()) == 3  # one line per prompt


@pytest.mark.parametrize(
    "task_args, message",
    [
        (dict(n_prompts=11), "n_prompts=11: choose 1..10"),
        (dict(n_prompts=1), "at least 2 target prompts"),
        (dict(seeds=0), "seeds=0"),
        (dict(n_heldout=1), "n_heldout=1"),
        (dict(prompts="missing.json"), "no such file"),
        (dict(rank_dtype="half"), "choose one of bfloat16, float32"),
        (dict(batch_size=0), "batch_size must be positive"),
        (dict(arms="propane"), "give two different arms"),
        (dict(arms="propane@bang,propane"), "give two different arms"),
        (dict(arms="propane@warm,random"), "init in bang, original, random"),
        (dict(prompt_len=-1), "prompt_len=-1"),
    ],
)
def test_bad_args_are_usage_errors(task_args, message):
    from harness.plugins.propane.suite import SuiteTask

    with pytest.raises(UsageError, match=message):
        SuiteTask(**task_args)


def test_a_prompts_file_and_its_errors(tmp_path):
    from harness.plugins.propane.suite import SuiteTask

    path = tmp_path / "prompts.json"
    path.write_text(json.dumps(["Tell me about the moon.", "Say hello."]))
    assert SuiteTask(prompts=str(path)).targets == ["Tell me about the moon.", "Say hello."]
    path.write_text(json.dumps({"a": 1}))
    with pytest.raises(UsageError, match="JSON list of non-empty strings"):
        SuiteTask(prompts=str(path))


def test_cli_exits_2_on_a_misspelt_arg(tiny_folder, tmp_path):
    result = run_suite(tiny_folder, tmp_path, "step=3")
    assert result.returncode == 2 and "did you mean 'steps'" in result.stderr, result.stderr[-1000:]
