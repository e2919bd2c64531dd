"""The relational task through the CLI: a tiny identity-attention run learns aba vs abb on unseen symbols; bad args
exit 2; the baseline and the next-token setting run end to end."""

import json

import pytest
from cli_helpers import run_harness

TINY = "n=128,steps=400,val_examples=64,test_examples=512"  # d_model 64: 0.90 test accuracy, 5 CPU-seconds


def run(out, task_args, *extra):
    done = run_harness(
        "run", "--task", "relational", "--task-args", task_args, "--out", out, "--json", *extra, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    return result["metrics"], out / result["run_id"], done


def test_identity_attention_learns_aba_vs_abb_on_unseen_symbols(tmp_path):
    metrics, folder, _ = run(tmp_path, f"{TINY},attention=identity")
    assert metrics["train_accuracy"] == 1.0
    # 512 test examples: chance is 0.5 with a standard error of 0.022
    assert metrics["test_accuracy"] > 0.7, metrics
    assert metrics["test_error"] == pytest.approx(1 - metrics["test_accuracy"])
    assert metrics["a_h_abs_mean"] > 0 and metrics["b_h_abs_mean"] > 0  # the identity terms left 0
    assert (folder / "learning_curves.png").stat().st_size > 1000
    assert (folder / "config.yaml").exists()
    again, _, rerun = run(tmp_path, f"{TINY},attention=identity")  # same command: resumed, same numbers
    assert "resuming run" in rerun.stderr
    assert {k: v for k, v in again.items() if k != "train_time_s"} == {
        k: v for k, v in metrics.items() if k != "train_time_s"
    }


def test_mlp_baseline_and_next_token_setting_run(tmp_path):
    mlp, _, _ = run(tmp_path, "n=16,steps=20,attention=mlp,val_examples=8,test_examples=32")
    assert 0 <= mlp["test_accuracy"] <= 1 and "a_h_abs_mean" not in mlp
    copy, _, _ = run(
        tmp_path,
        "setting=next_token,n=16,steps=20,d_model=16,n_head=2,attention=identity,val_examples=8,test_examples=32",
    )
    assert copy["vocab_size"] == 1 + 16 + 256 + 256 and 0 <= copy["test_error"] <= 1


@pytest.mark.parametrize(
    "task_args, message",
    [
        ("attention=identy", "identity"),
        ("templates=aba:+1,bab:-1", "renaming"),
        ("n=0", "n=0"),
        ("d_model=30,n_head=4", "divisible"),
        ("setting=classify", "choose one of regression"),
        ("setting=next_token,templates=aba_abb", "setting=regression"),
        ("test_alphabet=1,templates=aba_abb", "test_alphabet=1"),
        ("steps=ten", "must be int"),
        ("nn=5", "did you mean"),
    ],
)
def test_bad_args_exit_2(tmp_path, capsys, task_args, message):
    """In process (the CLI's main, as the command runs it): one line on stderr and status 2."""
    from harness.cli import main

    assert main(["run", "--task", "relational", "--task-args", task_args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_bad_args_exit_2_in_a_subprocess(tmp_path):
    bad = run_harness("run", "--task", "relational", "--task-args", "attention=identy", "--out", tmp_path)
    assert bad.returncode == 2 and "did you mean" in bad.stderr and "Traceback" not in bad.stderr
