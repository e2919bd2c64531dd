"""The ``mlflow`` tracker: one MLflow run per harness run, a sweep's points nested under the sweep's run.

Where: ``$MLFLOW_TRACKING_URI`` (a server, Databricks, a database; its credentials from MLflow's own environment
variables), else an embedded SQLite store beside the runs, ``sqlite:///<out>/mlflow.db``, with artifacts in
``<out>/mlartifacts``: nothing to start, and ``mlflow ui --backend-store-uri sqlite:///<out>/mlflow.db`` shows it.
The experiment is ``$MLFLOW_EXPERIMENT_NAME``, else ``harness``.
"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

from harness.errors import missing_extra
from harness.tracking import flat

STATUS = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
RUN_TAG = "harness.run_id"  # the harness run an MLflow run records (a sweep's points find their parent by it)


def key(name: str) -> str:
    """A metric or param name MLflow accepts: a sweep's ``acc@depth=1,n=8`` becomes ``acc/depth:1_n:8``."""
    name = name.replace("@", "/").replace("=", ":")
    return re.sub(r"[^/\w.\- :]", "_", name)


def batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail at once when a tracking server does not answer: MLflow's own retries take minutes per call."""
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(f"cannot reach the MLflow server at {uri} ({exc.strerror or exc})") from None


class MLflowTracker:
    def __init__(self):
        try:
            import mlflow
        except ImportError:
            raise missing_extra("--log mlflow", "mlflow", "mlflow") from None
        self.mlflow = mlflow
        self.last_step = 0

    def start(self, run, parent: str | None) -> None:
        from mlflow.entities import Param

        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{run.out / 'mlflow.db'}"
        reachable(uri)
        self.client = self.mlflow.MlflowClient(tracking_uri=uri)
        embedded = not os.environ.get("MLFLOW_TRACKING_URI")
        experiment = self.experiment(
            os.environ.get("MLFLOW_EXPERIMENT_NAME") or "harness", run.out if embedded else None
        )
        tags = {RUN_TAG: run.id, "harness.task": str(run.config.get("task", "")), "harness.dir": str(run.dir)}
        tags["harness.model"] = str(run.config.get("model") or "")
        if parent and (parent_run := self.find(experiment, parent)):
            tags["mlflow.parentRunId"] = parent_run
        self.run_id = self.client.create_run(experiment, run_name=run.id, tags=tags).info.run_id
        self.dir = Path(run.dir)
        limit = self.mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
        params = [Param(key(k), str(v)[:limit]) for k, v in flat(run.config).items()]
        for batch in batches(params, 100):
            self.client.log_batch(self.run_id, params=batch)

    def experiment(self, name: str, out: Path | None) -> str:
        """The experiment's id, created on first use (two processes creating it at once: the second finds it)."""
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = (Path(out) / "mlartifacts").absolute().as_uri() if out is not None else None
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except self.mlflow.exceptions.MlflowException:
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def find(self, experiment: str, run_id: str) -> str | None:
        """The newest MLflow run of the harness run ``run_id``."""
        runs = self.client.search_runs(
            [experiment], f"tags.`{RUN_TAG}` = '{run_id}'", order_by=["attributes.start_time DESC"], max_results=1
        )
        return runs[0].info.run_id if runs else None

    def series(self, points) -> None:
        self.log([(step, k, v) for step, values in points for k, v in values.items()])
        self.last_step = max([self.last_step] + [step for step, _ in points])

    def metrics(self, metrics: dict) -> None:
        """The final metrics, at the last step of the series (0 for an evaluation)."""
        self.log([(self.last_step, k, v) for k, v in metrics.items()])

    def log(self, entries: list[tuple[int, str, float]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key(name), value, now, step) for step, name, value in entries]
        for batch in batches(metrics, 1000):
            self.client.log_batch(self.run_id, metrics=batch)

    def artifact(self, path: Path) -> None:
        folder = Path(path).parent.relative_to(self.dir).as_posix()
        self.client.log_artifact(self.run_id, str(path), artifact_path=None if folder == "." else folder)

    def end(self, status: str, error: str) -> None:
        if error:
            self.client.set_tag(self.run_id, "harness.error", error[:5000])
        self.client.set_terminated(self.run_id, STATUS.get(status, "FAILED"))
