"""``--log tensorboard`` read back with TensorBoard's own event reader."""

import json

import pytest

pytest.importorskip("tensorboard")

from cli_helpers import harness_env, run_harness  # noqa: E402

PLUGIN = ("-p", "harness_trackplugin")


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_every_series_and_scalar_metric_is_in_the_event_files(tmp_path):
    out = tmp_path / "runs"
    result = run_harness(*PLUGIN, "run", "--task", "curve", "--out", out, "--json", "--log", "tensorboard")
    assert result.returncode == 0, result.stderr
    run_dir = out / json.loads(result.stdout)["run_id"]
    found = scalars(run_dir / "tensorboard")
    assert found["train_loss"] == [(s, 0.5**s) for s in range(1, 6)]  # powers of 2: exact in float32
    assert [step for step, _ in found["worker_b/loss"]] == [1, 2, 3, 4, 5]  # logged in a worker process
    assert found["metrics/accuracy"] == [(5, 0.5)] and found["metrics/rate"] == [(5, 0.5)]


def test_harness_log_writes_the_events_of_a_run_made_without_a_tracker(tmp_path):
    out = tmp_path / "runs"
    result = run_harness(*PLUGIN, "run", "--task", "curve", "--out", out, "--json", env=harness_env(HARNESS_LOG=""))
    run_dir = out / json.loads(result.stdout)["run_id"]
    assert not (run_dir / "tensorboard").exists()
    for _ in range(2):  # sent twice: the second replaces the first, nothing doubles
        sent = run_harness(*PLUGIN, "log", run_dir.name, "--to", "tensorboard", "--out", out)
        assert sent.returncode == 0, sent.stderr
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 1
    assert len(scalars(run_dir / "tensorboard")["train_loss"]) == 5
