"""An example harness plugin: ``capitals``, a four-way multiple-choice task scored by loglikelihood.

Run it with ``harness run --task capitals --model hf:smollm2``. The pattern is the one every evaluation task uses:
examples in, one request batch per chunk, a per-sample score, mean and stderr out (harness.evaluation.EvalTask).
"""

from __future__ import annotations

import json
from importlib import resources

from harness import hookimpl
from harness.evaluation import EvalTask


class Capitals(EvalTask):
    """Pick the capital among four cities; the answer is the choice with the highest total logprob."""

    name = "capitals"
    version = "1"
    metrics = ("accuracy",)

    def __init__(self, shots: int = 0):
        self.shots = shots

    def examples(self, ctx) -> list[dict]:
        text = resources.files(__name__).joinpath("capitals.jsonl").read_text()
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        prefix = "".join(f"The capital of {r['country']} is {r['answer']}.\n" for r in rows[: self.shots])
        return [
            {"id": r["country"], "prompt": f"{prefix}The capital of {r['country']} is", **r} for r in rows[self.shots :]
        ]

    def evaluate(self, lm, examples: list[dict], ctx) -> list[dict]:
        pairs = [(e["prompt"], f" {choice}") for e in examples for choice in e["choices"]]
        scores = [logprob for logprob, _ in lm.loglikelihood(pairs)]
        records = []
        for i, example in enumerate(examples):
            mine = scores[4 * i : 4 * i + 4]
            picked = example["choices"][mine.index(max(mine))]
            records.append(
                {
                    "id": example["id"],
                    "picked": picked,
                    "answer": example["answer"],
                    "accuracy": float(picked == example["answer"]),
                }
            )
        return records


@hookimpl
def harness_register_tasks(register):
    register("capitals", Capitals, description="capital cities, 4-way multiple choice (example plugin)")
