"""A plugin for the sweep tests: a model-free task whose metrics are known in closed form, with a sweep summary.

Sample i of a run scores ``y = a * (i + 1) * (2 if shape == "steep" else 1) + seed``, so a run's mean is
``a * k * (n + 1) / 2 + seed`` and the test can check the sweep's means and stderrs against numbers it computes.
"""

from __future__ import annotations

import json
import os
import time

from harness import hookimpl
from harness.errors import UsageError
from harness.evaluation import EvalTask


class Line(EvalTask):
    name = "line"
    version = "1"
    metrics = ("y", "z")
    chunk_size = 1
    needs_model = False

    def __init__(
        self, a: float = 1.0, shape: str = "flat", n: int = 3, delay: float = 0.0, threads: int = 1, crash: bool = False
    ):
        if shape not in ("flat", "steep"):
            raise UsageError(f"shape={shape}: choose flat or steep")
        self.a, self.shape, self.n, self.delay, self.threads = a, shape, n, delay, threads
        self.crash = crash  # with LINE_CRASH=1 in the environment: fail mid-run (a point that fails, then is fixed)

    def examples(self, ctx):
        return [{"id": f"ex{i}", "i": i} for i in range(self.n)]

    def evaluate(self, lm, examples, ctx):
        time.sleep(self.delay)
        if self.crash and os.environ.get("LINE_CRASH"):
            raise RuntimeError("crashed on purpose (LINE_CRASH=1)")
        k = 2 if self.shape == "steep" else 1
        return [{"id": e["id"], "y": self.a * (e["i"] + 1) * k + ctx.seed, "z": float(e["i"])} for e in examples]

    @staticmethod
    def sweep_summary(points, ctx) -> dict:
        """The largest mean y over the points, and a file naming every point's run (to check what it was given)."""
        ctx.path("points.json").write_text(
            json.dumps(
                [
                    {
                        "args": p["args"],
                        "seed": p["seed"],
                        "run_id": p["run_id"],
                        "dir": str(p["dir"]),
                        "y": p["metrics"]["y"],
                    }
                    for p in points
                ]
            )
        )
        return {"max_y": max(p["metrics"]["y"] for p in points)}


@hookimpl
def harness_register_tasks(register):
    register("line", Line, description="model-free task with closed-form metrics for the sweep tests")
