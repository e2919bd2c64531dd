"""A plugin used by the core tests: a model-free task whose samples are slow enough to interrupt.

Each sample records the process that computed it, so a resumed run shows which samples were recomputed.
"""

from __future__ import annotations

import os
import time

from harness import hookimpl
from harness.evaluation import EvalTask


class CountingTask(EvalTask):
    """Sample i scores (i * seed) % 7 == 0; chunk size 1 so every sample is written as soon as it is done."""

    name = "counting"
    version = "2"
    metrics = ("hit",)
    chunk_size = 1
    needs_model = False

    def __init__(self, n: int = 20, delay: float = 0.0):
        self.n = n
        self.delay = delay

    def examples(self, ctx):
        return [{"id": f"ex{i}", "i": i, "seed": ctx.seed} for i in range(self.n)]

    def evaluate(self, lm, examples, ctx):
        time.sleep(self.delay)
        return [
            {"id": e["id"], "hit": float((e["i"] * (e["seed"] + 1)) % 7 == 0), "pid": os.getpid()} for e in examples
        ]


class ThreadsTask:
    """Reports the torch threads it ran on, in the run's process and in ctx.map's workers: the run sets them."""

    name = "threads"
    version = "1"
    needs_model = False

    def __init__(self, threads: int = 1):
        self.threads = threads

    def run(self, ctx):
        import torch

        workers = ctx.map(_torch_threads, [0, 1], workers=2)
        return {"main": float(torch.get_num_threads()), "workers": float(max(workers))}


def _torch_threads(ctx, item) -> int:
    import torch

    return torch.get_num_threads()


@hookimpl
def harness_register_tasks(register):
    register("counting", CountingTask, description="model-free counting task for tests")
    register("threads", ThreadsTask, description="reports the torch threads the run gave it")


@hookimpl
def harness_register_probes(register):
    register("noop", lambda: None, description="does nothing")
