"""A plugin for the sweep-comparison tests: a model-free task whose per-sample scores are seeded noise.

Sample i of a run scores ``u = shift + bonus + N(0, 1)`` and ``v = u + 0.5 + N(0, 1)``, the noise drawn from
``(seed, shift, bonus, i)``: two sweeps that differ in ``bonus`` differ by ``bonus`` on average but not by the same
amount at every seed, so their paired statistics over seeds are not degenerate; ``u`` and ``v`` are two arms.
"""

from __future__ import annotations

import random

from harness import hookimpl
from harness.evaluation import EvalTask


class Noisy(EvalTask):
    name = "noisy"
    version = "1"
    metrics = ("u", "v")
    chunk_size = 8
    needs_model = False

    def __init__(self, shift: float = 0.0, bonus: float = 0.0, n: int = 4):
        self.shift, self.bonus, self.n = shift, bonus, n

    def examples(self, ctx):
        return [{"id": f"ex{i}", "i": i} for i in range(self.n)]

    def evaluate(self, lm, examples, ctx):
        records = []
        for e in examples:
            rng = random.Random(f"{ctx.seed}:{self.shift}:{self.bonus}:{e['i']}")
            u = self.shift + self.bonus + rng.gauss(0, 1)
            records.append({"id": e["id"], "u": u, "v": u + 0.5 + rng.gauss(0, 1)})
        return records


@hookimpl
def harness_register_tasks(register):
    register("noisy", Noisy, description="model-free task with seeded noisy scores for the sweep-comparison tests")
