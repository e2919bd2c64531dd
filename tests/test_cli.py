import json
import subprocess
import sys

import pytest
from cli_helpers import harness_env, run_harness

from harness.cli import main
from harness.errors import UsageError
from harness.options import parse_kv

COUNTING = ("-p", "harness_testplugin")


def test_help_and_list_do_not_import_heavy_modules():
    code = (
        "import sys; from harness.cli import main\n"
        "for argv in (['--help'], ['list'], ['list', 'backends'], ['plugins'], ['list', 'components'],\n"
        "             ['describe', 'graph_cot'], ['sweep', '--help'], ['--version']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'vllm') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=harness_env())
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


def test_unknown_command_suggests_the_close_one():
    result = run_harness("lsit")
    assert result.returncode == 2
    assert "did you mean 'list'" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_task_suggests_the_close_one(tmp_path):
    result = run_harness(*COUNTING, "run", "--task", "countin", "--out", tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "harness: error: unknown task 'countin': did you mean 'counting'?"


def test_bad_task_args_name_the_fix(tmp_path):
    result = run_harness(*COUNTING, "run", "--task", "counting", "--task-args", "n=x", "--out", tmp_path)
    assert result.returncode == 2
    assert "option 'n' must be int" in result.stderr and "--task-args" in result.stderr
    result = run_harness(*COUNTING, "run", "--task", "counting", "--task-args", "nn=3", "--out", tmp_path)
    assert result.returncode == 2 and "did you mean 'n'" in result.stderr


def test_debug_shows_the_traceback(tmp_path):
    result = run_harness(*COUNTING, "--debug", "run", "--task", "nope", "--out", tmp_path)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_run_show_compare_leaderboard(tmp_path):
    first = run_harness(*COUNTING, "run", "--task", "counting", "--task-args", "n=14", "--out", tmp_path, "--json")
    assert first.returncode == 0, first.stderr
    a = json.loads(first.stdout)
    assert a["metrics"]["hit"] == pytest.approx(2 / 14)  # i in {0, 7}
    second = run_harness(
        *COUNTING, "run", "--task", "counting", "--task-args", "n=14", "--seed", "6", "--out", tmp_path, "--json"
    )
    b = json.loads(second.stdout)
    assert b["metrics"]["hit"] == pytest.approx(1.0)  # (i * 7) % 7 == 0 for all i
    show = run_harness("show", a["run_id"][:14], "--out", tmp_path)
    assert show.returncode == 0 and "counting" in show.stdout and "hit" in show.stdout
    compare = run_harness("compare", a["run_id"], b["run_id"], "--out", tmp_path, "--format", "json")
    result = json.loads(compare.stdout)  # JSON only: the side-by-side metrics and the paired test
    assert result["metrics"][0]["delta"] == pytest.approx(1 - 2 / 14)
    assert result["paired"][0]["test"] == "mcnemar_exact" and result["paired"][0]["b_only"] == 12
    board = run_harness("leaderboard", "--out", tmp_path, "--format", "csv")
    assert board.returncode == 0
    assert board.stdout.splitlines()[0] == "model,counting/hit"
    assert board.stdout.splitlines()[1].endswith(",1.0")  # the latest run of a model wins


def test_leaderboard_without_runs_is_a_usage_error(tmp_path):
    result = run_harness("leaderboard", "--out", tmp_path)
    assert result.returncode == 2 and "run a task first" in result.stderr


@pytest.mark.parametrize("kind", ["tasks", "backends", "probes", "optimizers", "components"])
def test_list_kinds(kind):
    result = run_harness(*COUNTING, "list", kind, "--format", "json")
    assert result.returncode == 0, result.stderr
    names = [row["name"] for row in json.loads(result.stdout)]
    expected = {"tasks": "counting", "backends": "hf", "probes": "noop"}.get(kind)
    if expected:
        assert expected in names


def test_list_unknown_kind():
    result = run_harness("list", "task")
    assert result.returncode == 2 and "did you mean 'tasks'" in result.stderr


def test_parse_kv():
    assert parse_kv("a=1,b=x y,c=true,d=0.5,e=", "--x") == {"a": 1, "b": "x y", "c": True, "d": 0.5, "e": ""}
    assert parse_kv("prompt=hello, world,n=2", "--x") == {"prompt": "hello, world", "n": 2}
    with pytest.raises(UsageError, match="key=value"):
        parse_kv("oops", "--task-args")


def test_main_returns_2_on_usage_errors(capsys):
    assert main(["run"]) == 2
    assert "--task" in capsys.readouterr().err


def test_secrets_are_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "runs"
    for flag, key in (("--model-args", "api_key"), ("--model-args", "hf_token"), ("--task-args", "password")):
        result = run_harness(
            "run",
            "--task",
            "graph_cot_llm",
            "--model",
            "openai:http://127.0.0.1:9/v1",
            flag,
            f"{key}=sk-do-not-keep",
            "--out",
            out,
        )
        assert result.returncode == 2 and "environment" in result.stderr, result.stderr
        assert "sk-do-not-keep" not in result.stderr
    assert not out.exists()  # no run folder, config or index holds the secret
    assert parse_kv("batch_tokens=4,max_tokens=8,api_key_env=MY_KEY", "--x")["api_key_env"] == "MY_KEY"


def test_bad_out_port_and_empty_model_are_one_line_usage_errors(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    cases = [
        ((*COUNTING, "run", "--task", "counting", "--out", afile), "cannot write a run folder there"),
        (("serve", "--model", "hf:smollm2", "--port", "99999"), "not a port number"),
        (("run", "--task", "graph_cot", "--model", "", "--out", tmp_path / "runs"), "--model ''"),
    ]
    for args, message in cases:
        result = run_harness(*args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_describe_prints_options_from_the_factory_signature_and_version():
    shown = run_harness("describe", "graph_cot_d2")
    assert shown.returncode == 0, shown.stderr
    rows = {line.split()[0]: line.split() for line in shown.stdout.splitlines() if line.strip()}
    assert rows["depth"][1:4] == ["int", "1", "2"]  # type, default, the preset's value (then range, help)
    assert rows["steps"][1:4] == ["int", "2500", "8000"] and "curriculum" in rows
    optimizer = run_harness("describe", "propane")
    assert optimizer.returncode == 0 and "target_prompt" in optimizer.stdout
    missing = run_harness("describe", "graph_cott")
    assert missing.returncode == 2 and "did you mean 'graph_cot'" in missing.stderr
    version = run_harness("--version")
    assert version.returncode == 0 and version.stdout.strip().startswith("harness ")


def test_list_tasks_wraps_to_the_terminal_width():
    result = run_harness(*COUNTING, "list", "tasks", env=harness_env(COLUMNS="100"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(map(len, lines)) <= 100, max(lines, key=len)
    assert len(lines) > len(json.loads(run_harness(*COUNTING, "list", "tasks", "--format", "json").stdout)) + 2


def test_a_run_prints_its_headline_and_keeps_the_grid_for_show():
    from harness import report

    metrics = {"acc": 0.5, "acc_stderr": 0.1, "dfs/acc": 0.2, "dfs/loss": 1.5, "loss": 2.0}
    metrics |= {f"dfs/acc@B={b},N={n}": 0.1 for b in (4, 8, 12) for n in (1, 2, 4, 8)}
    rows, hidden = report.headline_rows(metrics, "loss")  # the primary, the top level, each model's primary
    assert [r["metric"] for r in rows] == ["loss", "acc", "dfs/loss"] and rows[1]["stderr"] == 0.1 and hidden == 13
    assert report.headline_rows(metrics, "loss", everything=True) == (report.metric_rows(metrics), 0)
    few = {"hit": 1.0, "a/b": 2.0}
    assert report.headline_rows(few, "hit") == (report.metric_rows(few), 0)  # a short list is printed whole


def test_sigterm_stops_the_workers_and_leaks_no_semaphore(tmp_path):
    """A run that trains two models in worker processes, killed with SIGTERM once both train: it is recorded as
    interrupted, its workers are gone, and the resource tracker has nothing to report."""
    import signal
    import time

    from harness.store import Index

    out, log = tmp_path / "runs", tmp_path / "stderr.txt"
    args = ["--task", "graph_cot", "--task-args", "cot=dfs,path,steps=3000,examples=4,samples=2,workers=2"]
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "run", *args, "--out", str(out), "--no-cache"],
            env=harness_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    deadline = time.time() + 600
    while time.time() < deadline and not all(f"train {s}:" in log.read_text() for s in ("dfs", "path")):
        assert proc.poll() is None, log.read_text()[-2000:]
        time.sleep(0.5)
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130
    text = log.read_text()
    assert "leaked semaphore" not in text and "interrupted" in text, text[-2000:]
    assert [r["status"] for r in Index(out).runs()] == ["interrupted"]
    deadline = time.time() + 30  # the resource tracker leaves once its pipe closes
    while time.time() < deadline and [pid for pid in children if running(pid)]:
        time.sleep(0.5)
    assert not [pid for pid in children if running(pid)]


def running(pid: str) -> bool:
    """Whether a process lives (a zombie, which nobody reaped yet in a container, does not count)."""
    from pathlib import Path

    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_terminal_sees_the_run_folder_when_the_run_opens(tmp_path):
    """On a terminal the run's folder is the first line, before the task works; piped (scripts, the tests above),
    a refused run's error stays the one line."""
    import os
    import pty

    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "harness.cli", "run", "--task", "graph_cot", "--model", "baseline:random-path"]
    command += ["--task-args", "examples=3", "--out", str(tmp_path)]
    done = subprocess.run(command, stderr=follower, stdout=subprocess.PIPE, env=harness_env(), timeout=300)
    os.close(follower)
    first = os.read(leader, 4096).decode().splitlines()[0]
    os.close(leader)
    run_id, folder = first.removeprefix("run ").split(": ", 1)
    assert done.returncode == 0 and run_id.startswith("graph_cot-") and folder == str(tmp_path / run_id)
