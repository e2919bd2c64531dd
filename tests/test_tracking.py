"""The tracker contract (harness/tracking.py) through the CLI, with a third party's trackers (tests/support's
``jsonl`` and ``broken``): what a tracker receives for run, sweep, optimize and `harness log`, in which order, and
that a tracker that fails never costs the run. No tracker library is needed (those are tests/trackers/)."""

import json

from cli_helpers import harness_env, run_harness

from harness.tracking import flat, selected

PLUGIN = ("-p", "harness_trackplugin")


def _events(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _curve(tmp_path, *args, env=None):
    result = run_harness(
        *PLUGIN,
        "run",
        "--task",
        "curve",
        "--out",
        tmp_path / "runs",
        "--json",
        *args,
        env=env or harness_env(TRACK_LOG=str(tmp_path / "track.jsonl")),
    )
    return result


def test_hook_register_trackers(tmp_path):
    """A third party's tracker gets the config, the series, the metrics, the files and the end, each after the run's
    own record of it is written."""
    result = _curve(tmp_path, "--log", "jsonl")
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    events = _events(tmp_path / "track.jsonl")
    assert [e["event"] for e in events][0] == "start" and events[-1] == {
        "event": "end",
        "status": "finished",
        "error": "",
    }
    assert events[0]["run_id"] == run["run_id"] and events[0]["parent"] is None and events[0]["task"] == "curve"
    series = [e for e in events if e["event"] == "series"]
    assert all(e["recorded"] for e in series)  # metrics.jsonl held each point before the tracker saw it
    assert [(e["step"], e["values"]) for e in series[:5]] == [(s, {"train_loss": 0.5**s}) for s in range(1, 6)]
    for worker in ("worker_a", "worker_b"):  # logged in worker processes: sent from metrics.jsonl at the end
        assert sorted(e["step"] for e in series if f"{worker}/loss" in e["values"]) == [1, 2, 3, 4, 5]
    metrics = next(e for e in events if e["event"] == "metrics")
    assert metrics == {
        "event": "metrics",
        "metrics": {"accuracy": 0.5, "accuracy_stderr": 0.25, "rate": 0.5},
        "recorded": True,
    }
    artifacts = {e["name"] for e in events if e["event"] == "artifact"}
    assert artifacts == {
        "config.yaml",
        "metrics.json",
        "metrics.jsonl",
        "samples.jsonl",
        "loss.png",
        "worker_a/loss.png",
    }


def test_a_failing_tracker_is_one_line_and_the_run_is_kept(tmp_path):
    result = _curve(tmp_path, "--log", "broken", "--log", "jsonl")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("harness: tracker")]
    assert len(lines) == 1 and lines[0].startswith("harness: tracker 'broken' failed (ConnectionError: server went")
    run = json.loads(result.stdout)
    assert f"harness log {run['run_id']} --to broken" in lines[0]
    assert json.loads((tmp_path / "runs" / run["run_id"] / "metrics.json").read_text())["accuracy"] == 0.5
    assert _events(tmp_path / "track.jsonl")[-1]["status"] == "finished"  # the other tracker got everything


def test_a_failed_run_ends_failed_in_the_tracker(tmp_path):
    result = _curve(tmp_path, "--task-args", "fail=true", "--log", "jsonl")
    assert result.returncode != 0
    events = _events(tmp_path / "track.jsonl")
    assert events[-1] == {"event": "end", "status": "failed", "error": "RuntimeError: asked to fail"}
    assert "metrics" not in [e["event"] for e in events] and {"event": "artifact", "name": "loss.png"} in events


def test_an_unknown_tracker_is_refused_before_the_run(tmp_path):
    result = _curve(tmp_path, "--log", "jsnl")
    assert result.returncode == 2 and "unknown tracker 'jsnl': did you mean 'jsonl'?" in result.stderr
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("curve-*"))


def test_harness_log_env_selects_trackers(tmp_path):
    result = _curve(tmp_path, env=harness_env(TRACK_LOG=str(tmp_path / "track.jsonl"), HARNESS_LOG="jsonl"))
    assert result.returncode == 0, result.stderr
    assert _events(tmp_path / "track.jsonl")[-1]["status"] == "finished"


def test_harness_log_sends_a_finished_run_later(tmp_path):
    result = _curve(tmp_path)
    run_id = json.loads(result.stdout)["run_id"]
    assert not (tmp_path / "track.jsonl").exists()
    sent = run_harness(
        *PLUGIN, "log", run_id[:9], "--to", "jsonl", "--out", tmp_path / "runs",
        env=harness_env(TRACK_LOG=str(tmp_path / "track.jsonl")),
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    events = _events(tmp_path / "track.jsonl")
    assert events[0]["run_id"] == run_id and events[-1]["status"] == "finished"
    assert len([e for e in events if e["event"] == "series"]) == 15 and all(e["recorded"] for e in events[1:16])
    refused = run_harness(*PLUGIN, "log", run_id, "--to", "nope", "--out", tmp_path / "runs")
    assert refused.returncode == 2 and "unknown tracker 'nope'" in refused.stderr


def test_sweep_points_name_the_sweep_as_their_parent(tmp_path):
    result = run_harness(
        *PLUGIN, "sweep", "--task", "curve", "--grid", "rate=0.5,0.25", "--out", tmp_path / "runs", "--json",
        "--log", "jsonl", env=harness_env(TRACK_LOG=str(tmp_path / "track.jsonl")),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    sweep_id = json.loads(result.stdout)["run_id"]
    starts = [e for e in _events(tmp_path / "track.jsonl") if e["event"] == "start"]
    assert [e["parent"] for e in starts if e["run_id"] == sweep_id] == [None]
    points = [e for e in starts if e["run_id"] != sweep_id]
    assert len(points) == 2 and {e["parent"] for e in points} == {sweep_id}
    ends = [e for e in _events(tmp_path / "track.jsonl") if e["event"] == "end"]
    assert len(ends) == 3 and {e["status"] for e in ends} == {"finished"}


def test_optimize_is_tracked_like_a_run(tmp_path):
    result = run_harness(
        *PLUGIN, "-p", "harness_hookplugin", "optimize", "--optimizer", "echo", "--model", "hf:smollm2",
        "--out", tmp_path / "runs", "--log", "jsonl", "--json",
        env=harness_env(TRACK_LOG=str(tmp_path / "track.jsonl"), HOOK_LOG=str(tmp_path / "hooks.jsonl")),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    events = _events(tmp_path / "track.jsonl")
    assert events[0]["task"] == "optimize_echo" and events[-1]["status"] == "finished"


def test_flat_params_leave_secrets_out():
    config = {"model_args": {"api_key": "sk-1", "api_key_env": "MY_KEY", "dtype": "bf16"}, "task_args": {"token": "t"}}
    assert flat(config) == {"model_args.api_key_env": "MY_KEY", "model_args.dtype": "bf16"}


def test_selected_names(monkeypatch):
    monkeypatch.setenv("HARNESS_LOG", "a, b")
    assert selected(None) == ["a", "b"]
    assert selected(["mlflow", "tensorboard,mlflow"]) == ["mlflow", "tensorboard"]
