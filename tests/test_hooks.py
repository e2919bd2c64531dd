"""One test per hookspec: a plugin implementing it is called as documented."""

import json

from cli_helpers import harness_env, run_harness

from harness.registry import Plugins

ECHO = ("-p", "harness_hookplugin")


def _plugins():
    return Plugins(extra_modules=["harness_hookplugin"])


def test_hook_register_tasks():
    assert _plugins().registry("tasks").get("echo").plugin == "harness_hookplugin"


def test_hook_register_backends():
    assert "echo" in _plugins().registry("backends")


def test_hook_register_components():
    assert "attention:echo" in _plugins().registry("components")


def test_hook_register_probes():
    assert "echo" in _plugins().registry("probes")


def test_hook_register_optimizers():
    assert "echo" in _plugins().registry("optimizers")


def test_hook_register_commands():
    result = run_harness(*ECHO, "echo", "hello")
    assert result.returncode == 0 and result.stdout.strip() == "echo: hello"


def _run_echo(tmp_path):
    log = tmp_path / "hooks.jsonl"
    result = run_harness(
        *ECHO,
        "run",
        "--task",
        "echo",
        "--task-args",
        "value=0.25",
        "--out",
        tmp_path / "runs",
        env=harness_env(HOOK_LOG=str(log)),
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_hook_run_start(tmp_path):
    calls = _run_echo(tmp_path)
    assert calls[0]["hook"] == "run_start" and calls[0]["run_id"].startswith("echo-")


def test_hook_sample_end(tmp_path):
    calls = [c for c in _run_echo(tmp_path) if c["hook"] == "sample_end"]
    assert [c["sample"] for c in calls] == [{"id": "only", "value": 0.25}]


def test_hook_run_end(tmp_path):
    calls = _run_echo(tmp_path)
    assert calls[-1] == {"hook": "run_end", "run_id": calls[0]["run_id"], "metrics": {"value": 0.25}}


def test_hook_train_step():
    results = _plugins().hook.harness_train_step(step=3, model=None, batch=None, captures={})
    assert {"echo_step": 3} in results


def test_hook_train_step_fires_in_a_real_run(tmp_path):
    """Through `harness run`: graph_cot trains two strategies in worker processes, and the hook's values land in
    the run's series for both (so the hook fires in every process that trains)."""
    out = tmp_path / "runs"
    result = run_harness(
        *ECHO,
        "run",
        "--task",
        "graph_cot",
        "--model",
        "scratch",
        "--task-args",
        "depth=1,cot=dfs,path,steps=12,examples=2,samples=1,budgets=4,workers=2",
        "--probe-every",
        "5",
        "--out",
        out,
        "--no-cache",
        "--json",
        env=harness_env(HOOK_LOG=str(tmp_path / "hooks.jsonl")),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = json.loads(result.stdout)["dir"]
    series = [json.loads(line) for line in open(f"{run_dir}/metrics.jsonl")]
    for strategy in ("dfs", "path"):
        steps = sorted(r["step"] for r in series if f"{strategy}/echo_step" in r)
        assert steps == [1, 5, 10], (strategy, steps)


def test_an_interrupted_training_run_resumes_with_each_step_once(tmp_path):
    """kill -9 of a training run, then the same command: the workers died with the run (nothing else writes into
    the folder), and the resumed series holds every logged step once."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "runs"
    args = [
        sys.executable,
        "-m",
        "harness.cli",
        "run",
        "--task",
        "graph_cot",
        "--model",
        "scratch",
        "--task-args",
        "depth=1,cot=dfs,path,steps=300,examples=2,samples=1,budgets=4,workers=2",
        "--out",
        str(out),
        "--no-cache",
        "--json",
    ]
    first = subprocess.Popen(
        args, env=harness_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 600
    while time.time() < deadline and not list(out.glob("*/train-*/checkpoint/train_state.pt")):
        time.sleep(1)
    time.sleep(3)
    os.kill(first.pid, signal.SIGKILL)  # the run alone, not its process group: workers must die by themselves
    first.wait()
    time.sleep(3)
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert str(out) not in ps, "training workers outlived the run"
    again = run_harness(*args[3:], timeout=900)
    assert again.returncode == 0, again.stderr[-2000:]
    series = [json.loads(line) for line in open(f"{json.loads(again.stdout)['dir']}/metrics.jsonl")]
    for key in ("dfs/train_loss", "path/train_loss"):
        steps = [r["step"] for r in series if key in r]
        assert steps == sorted(set(steps)) and steps[-1] == 300, (key, steps)
