"""``--log wandb``: an offline W&B run in the run's folder, read back from its ``.wandb`` file with W&B's own
protobuf messages (tests/support/wandb_file.py)."""

import json

import pytest

pytest.importorskip("wandb")

from cli_helpers import harness_env, run_harness  # noqa: E402
from wandb_file import items, records  # noqa: E402

PLUGIN = ("-p", "harness_trackplugin")


def env(tmp_path, **extra) -> dict:
    values = harness_env(
        WANDB_CONFIG_DIR=str(tmp_path / "wandb-config"), WANDB_CACHE_DIR=str(tmp_path / "wandb-cache"), **extra
    )
    for name in ("WANDB_MODE", "WANDB_DIR", "WANDB_PROJECT", "HARNESS_LOG"):
        if name not in extra:
            values.pop(name, None)
    return values


def by_type(run_file) -> dict[str, list]:
    found = {}
    for record in records(run_file):
        found.setdefault(record.WhichOneof("record_type"), []).append(record)
    return found


def test_an_offline_run_holds_config_series_summary_and_files(tmp_path):
    out = tmp_path / "runs"
    args = ("run", "--task", "curve", "--out", out, "--json", "--log", "wandb")
    result = run_harness(*PLUGIN, *args, env=env(tmp_path, WANDB_API_KEY="s3cret-env-" + "0" * 30))
    assert result.returncode == 0, result.stderr
    run_dir = out / json.loads(result.stdout)["run_id"]
    (run_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")  # offline: nothing left this machine
    assert f"wandb sync {run_file.parent}" in result.stderr
    found = by_type(run_file)
    (run,) = found["run"]
    assert run.run.display_name == run_dir.name and run.run.run_group == run_dir.name
    config = items(run.run.config.update)
    assert config["task"] == "curve" and config["seed"] == 0 and config["versions.harness-lm"]  # flattened
    history = [items(r.history.item) for r in found["history"]]
    assert [(h["step"], h["train_loss"]) for h in history if "train_loss" in h] == [(s, 0.5**s) for s in range(1, 6)]
    assert sorted(h["step"] for h in history if "worker_a/loss" in h) == [1, 2, 3, 4, 5]
    summary = {k: v for r in found["summary"] for k, v in items(r.summary.update).items()}
    assert summary["accuracy"] == 0.5 and summary["rate"] == 0.5
    (artifact,) = found["artifact"]
    assert {m.path for m in artifact.artifact.manifest.contents} >= {
        "loss.png",
        "worker_a/loss.png",
        "samples.jsonl",
        "config.yaml",
    }
    assert found["exit"][0].exit.exit_code == 0
    assert b"s3cret-env" not in run_file.read_bytes()  # the key stays in W&B's environment


def test_a_sweep_groups_its_points_under_the_sweep(tmp_path):
    out = tmp_path / "runs"
    grid = ("--grid", "rate=0.5,0.25", "--workers", "2")
    result = run_harness(
        *PLUGIN, "sweep", "--task", "curve", *grid, "--out", out, "--json", "--log", "wandb", env=env(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    sweep_id = json.loads(result.stdout)["run_id"]
    groups = {}
    for run_file in out.glob("*/wandb/offline-run-*/run-*.wandb"):
        (run,) = by_type(run_file)["run"]
        groups[run.run.display_name] = (run.run.run_group, run.run.job_type)
    assert groups.pop(sweep_id) == (sweep_id, "run")
    assert len(groups) == 2 and set(groups.values()) == {(sweep_id, "point")}
