"""The ``tensorboard`` tracker: event files in ``<run>/tensorboard`` for every training series (by step) and every
scalar metric (``metrics/<name>``, at the last step); ``tensorboard --logdir <out>`` shows every run."""

from __future__ import annotations

import time
from pathlib import Path

from harness.errors import missing_extra


class TensorBoardTracker:
    def __init__(self):
        try:
            from tensorboard.compat.proto import event_pb2, summary_pb2
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError:
            raise missing_extra("--log tensorboard", "tensorboard", "tensorboard") from None
        self.Event, self.Summary, self.EventFileWriter = event_pb2.Event, summary_pb2.Summary, EventFileWriter
        self.last_step = 0

    def start(self, run, parent: str | None) -> None:
        folder = Path(run.dir) / "tensorboard"
        # an earlier attempt's events (before a resume, or an earlier `harness log`): this attempt sends everything
        for old in folder.glob("events.out.tfevents.*"):
            old.unlink()
        self.writer = self.EventFileWriter(str(folder))

    def write(self, step: int, values: dict[str, float]) -> None:
        summary = self.Summary(value=[self.Summary.Value(tag=tag, simple_value=v) for tag, v in values.items()])
        self.writer.add_event(self.Event(wall_time=time.time(), step=step, summary=summary))

    def series(self, points) -> None:
        for step, values in points:
            self.write(step, values)
            self.last_step = max(self.last_step, step)

    def metrics(self, metrics: dict) -> None:
        self.write(self.last_step, {f"metrics/{k}": v for k, v in metrics.items()})

    def artifact(self, path: Path) -> None:
        """Files stay in the run's folder, beside the event files."""

    def end(self, status: str, error: str) -> None:
        self.writer.close()
