"""A plugin for the tracker tests: a model-free task with everything a tracker receives, in a second, and two
third-party trackers (one that writes each call to ``$TRACK_LOG``, one that breaks).

``curve`` logs a series from the run's process (steps 1..steps) and, through ``ctx.map``, one series from each
of two worker processes; it records samples, draws a plot, and returns scalar metrics, or fails when asked to.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness import hookimpl


def worker_series(ctx, item: tuple[str, int]) -> int:
    name, steps = item
    for step in range(1, steps + 1):
        ctx.log(step, {f"{name}/loss": 1.0 / step})
    return steps


class CurveTask:
    name = "curve"
    version = "1"
    primary_metric = "accuracy"

    def __init__(self, steps: int = 5, rate: float = 0.5, fail: bool = False):
        self.steps, self.rate, self.fail = steps, rate, fail

    def run(self, ctx):
        from harness.report import figure

        for step in range(1, self.steps + 1):
            ctx.log(step, {"train_loss": self.rate**step, "note": "text stays in metrics.jsonl"})
        ctx.map(worker_series, [("worker_a", self.steps), ("worker_b", self.steps)], workers=2)
        ctx.record([{"id": f"s{i}", "correct": float(i % 2)} for i in range(4)])
        plt = figure()
        fig, ax = plt.subplots()
        ax.plot(range(self.steps), [self.rate**s for s in range(self.steps)])
        fig.savefig(ctx.path("loss.png"))
        ctx.path("worker_a").mkdir(exist_ok=True)
        fig.savefig(ctx.path("worker_a") / "loss.png")  # a second plot of the same name, as each trainer draws
        plt.close(fig)
        if self.fail:
            raise RuntimeError("asked to fail")
        return {"accuracy": 0.5, "accuracy_stderr": 0.25, "rate": self.rate}


@hookimpl
def harness_register_tasks(register):
    register("curve", CurveTask, description="a series, samples, a plot and metrics, for the tracker tests")


class JsonlTracker:
    """Each call as one JSON line in $TRACK_LOG; a series point also says whether metrics.jsonl held it already."""

    def call(self, event: str, **data) -> None:
        with open(os.environ["TRACK_LOG"], "a") as f:
            f.write(json.dumps({"event": event, **data}, default=str) + "\n")

    def start(self, run, parent):
        self.dir = Path(run.dir)
        self.call("start", run_id=run.id, parent=parent, task=run.config.get("task"), config=run.config)

    def series(self, points):
        written = [json.loads(line) for line in (self.dir / "metrics.jsonl").read_text().splitlines()]
        for step, values in points:
            recorded = all(any(r.get("step") == step and r.get(k) == v for r in written) for k, v in values.items())
            self.call("series", step=step, values=values, recorded=recorded)

    def metrics(self, metrics):
        self.call("metrics", metrics=metrics, recorded=(self.dir / "metrics.json").exists())

    def artifact(self, path):
        self.call("artifact", name=str(Path(path).relative_to(self.dir)))

    def end(self, status, error):
        self.call("end", status=status, error=error)


class BrokenTracker(JsonlTracker):
    """Fails at its second series point, as a tracker whose server went down mid-run."""

    calls = 0

    def start(self, run, parent):
        self.dir = Path(run.dir)

    def series(self, points):
        BrokenTracker.calls += 1
        if BrokenTracker.calls > 1:
            raise ConnectionError("server went away")

    def call(self, event, **data):
        raise AssertionError("a dropped tracker is called no more")


@hookimpl
def harness_register_trackers(register):
    register("jsonl", JsonlTracker, description="each call as a JSON line in $TRACK_LOG")
    register("broken", BrokenTracker, description="fails at its second series point")
