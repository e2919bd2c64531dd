"""The ``wandb`` tracker: one W&B run per harness run, grouped by sweep, offline into ``<run>/wandb`` unless the
user configured W&B (``WANDB_MODE=online`` after ``wandb login``; the key from W&B's own ``WANDB_API_KEY`` or
netrc). An offline run is uploaded later with ``wandb sync <run>/wandb/offline-run-*``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from harness.errors import missing_extra
from harness.tracking import flat

STEP = "step"  # the series' own x axis: points from worker processes come out of order


class WandbTracker:
    def __init__(self):
        try:
            import wandb
        except ImportError:
            raise missing_extra("--log wandb", "wandb", "wandb") from None
        self.wandb = wandb
        self.files: list[Path] = []

    def start(self, run, parent: str | None) -> None:
        settings = self.wandb.Settings(console="off", silent=True, x_disable_stats=True)
        self.run = self.wandb.init(
            project=os.environ.get("WANDB_PROJECT") or "harness",
            mode=os.environ.get("WANDB_MODE") or "offline",
            dir=os.environ.get("WANDB_DIR") or str(run.dir),
            name=run.id,
            group=parent or run.id,
            job_type="point" if parent else "run",
            config=flat(run.config),
            reinit="create_new",
            settings=settings,
        )
        self.run.define_metric(STEP)
        self.run.define_metric("*", step_metric=STEP)
        self.name, self.dir = run.id, Path(run.dir)

    def series(self, points) -> None:
        for step, values in points:
            self.run.log({**values, STEP: step})

    def metrics(self, metrics: dict) -> None:
        self.run.summary.update(metrics)

    def artifact(self, path: Path) -> None:
        self.files.append(Path(path))

    def end(self, status: str, error: str) -> None:
        if self.files:
            artifact = self.wandb.Artifact(f"{self.name}-files", type="run-files")
            for path in self.files:
                artifact.add_file(str(path), name=path.relative_to(self.dir).as_posix())  # plots of each trainer
            self.run.log_artifact(artifact)
        if error:
            self.run.summary["harness_error"] = error
        self.run.finish(exit_code=0 if status == "finished" else 1)
        if self.run.offline:
            folder = Path(self.run.dir).parent
            print(
                f"harness: wandb run {self.name} is offline in {folder}: upload it with `wandb sync {folder}`",
                file=sys.stderr,
            )
