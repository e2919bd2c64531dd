"""``--log mlflow`` read back with MLflow's own client from the embedded SQLite store beside the runs."""

import json

import pytest

pytest.importorskip("mlflow")

from cli_helpers import harness_env, run_harness  # noqa: E402

PLUGIN = ("-p", "harness_trackplugin")


def env(**extra) -> dict:
    values = harness_env(**extra)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "HARNESS_LOG"):
        if name not in extra:
            values.pop(name, None)
    return values


@pytest.fixture(scope="module")
def fresh_store(tmp_path_factory):
    """``copy(out)``: an empty MLflow store made by MLflow once, put where a run's --out keeps it (MLflow's schema
    migrations take 10-20 s on this machine; a run on an empty folder makes the same file itself)."""
    import shutil

    template = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    client(template.parent).search_experiments()

    def copy(out):
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(template, out / "mlflow.db")

    return copy


def client(out):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")


def runs_of(out, run_id: str):
    c = client(out)
    experiment = c.get_experiment_by_name("harness")
    return c.search_runs([experiment.experiment_id], f"tags.`harness.run_id` = '{run_id}'")


def test_a_run_reads_back_with_params_metrics_series_and_artifacts(tmp_path):
    out = tmp_path / "runs"  # a folder without a store: the run makes it
    args = ("run", "--task", "curve", "--out", out, "--json", "--log", "mlflow")
    result = run_harness(*PLUGIN, *args, env=env(MLFLOW_TRACKING_TOKEN="s3cret-env"))
    assert result.returncode == 0, result.stderr
    run_id = json.loads(result.stdout)["run_id"]
    (found,) = runs_of(out, run_id)
    assert found.info.status == "FINISHED" and found.info.run_name == run_id
    assert found.data.params["task"] == "curve" and found.data.params["seed"] == "0"
    metrics = found.data.metrics  # the final scalars, beside each series' latest value
    assert {k: metrics[k] for k in ("accuracy", "accuracy_stderr", "rate", "train_loss")} == {
        "accuracy": 0.5, "accuracy_stderr": 0.25, "rate": 0.5, "train_loss": 0.5**5
    }  # fmt: skip
    history = client(out).get_metric_history(found.info.run_id, "train_loss")
    assert [(m.step, m.value) for m in history] == [(s, 0.5**s) for s in range(1, 6)]
    worker = client(out).get_metric_history(found.info.run_id, "worker_a/loss")  # logged in a worker process
    assert sorted(m.step for m in worker) == [1, 2, 3, 4, 5]
    files = {a.path for a in client(out).list_artifacts(found.info.run_id)}
    assert {"loss.png", "samples.jsonl", "config.yaml", "metrics.json"} <= files
    assert [a.path for a in client(out).list_artifacts(found.info.run_id, "worker_a")] == ["worker_a/loss.png"]
    assert (out / "mlartifacts").is_dir()  # artifacts beside the store, not in the working directory
    # the tracker's token stays in its environment: no record holds it
    assert "s3cret-env" not in "".join(p.read_text() for p in (out / run_id).glob("*.*") if p.suffix != ".png")


def test_sweep_points_are_child_runs_of_the_sweep(tmp_path, fresh_store):
    out = tmp_path / "runs"
    fresh_store(out)
    grid = ("--grid", "rate=0.5,0.25", "--workers", "2")
    result = run_harness(
        *PLUGIN, "sweep", "--task", "curve", *grid, "--out", out, "--json", "--log", "mlflow", env=env()
    )
    assert result.returncode == 0, result.stderr
    sweep_id = json.loads(result.stdout)["run_id"]
    (sweep,) = runs_of(out, sweep_id)
    assert sweep.data.metrics["accuracy/rate:0.5"] == 0.5  # the sweep's accuracy@rate=0.5
    c = client(out)
    children = c.search_runs([sweep.info.experiment_id], f"tags.`mlflow.parentRunId` = '{sweep.info.run_id}'")
    assert sorted(r.data.params["task_args.rate"] for r in children) == ["0.25", "0.5"]
    assert all(r.info.status == "FINISHED" for r in children)


def test_a_server_that_is_down_costs_one_line_and_harness_log_sends_the_run_later(tmp_path, fresh_store):
    out = tmp_path / "runs"
    args = ("run", "--task", "curve", "--out", out, "--json", "--log", "mlflow")
    result = run_harness(*PLUGIN, *args, env=env(MLFLOW_TRACKING_URI="http://127.0.0.1:9"))
    assert result.returncode == 0, result.stderr
    run_id = json.loads(result.stdout)["run_id"]
    lines = [line for line in result.stderr.splitlines() if "mlflow" in line.lower() and str(out) not in line[:80]]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and "tracker 'mlflow' failed" in lines[0] and "Connection refused" in lines[0]
    assert (out / run_id / "metrics.json").exists() and not (out / "mlflow.db").exists()
    fresh_store(out)
    sent = run_harness(*PLUGIN, "log", run_id, "--to", "mlflow", "--out", out, env=env())
    assert sent.returncode == 0, sent.stderr
    (found,) = runs_of(out, run_id)
    assert found.info.status == "FINISHED" and found.data.metrics["accuracy"] == 0.5
    assert len(client(out).get_metric_history(found.info.run_id, "train_loss")) == 5


def test_a_failed_run_is_failed_in_mlflow(tmp_path, fresh_store):
    out = tmp_path / "runs"
    fresh_store(out)
    args = ("run", "--task", "curve", "--task-args", "fail=true", "--out", out, "--log", "mlflow")
    result = run_harness(*PLUGIN, *args, env=env())
    assert result.returncode != 0
    (found,) = client(out).search_runs([client(out).get_experiment_by_name("harness").experiment_id])
    assert found.info.status == "FAILED" and found.data.tags["harness.error"] == "RuntimeError: asked to fail"
    assert len(client(out).get_metric_history(found.info.run_id, "train_loss")) == 5
