"""What a task is, what it gets to work with, and the base class for evaluation tasks.

A task is any object with ``name``, ``version``, ``primary_metric`` and ``run(ctx) -> dict[str, float]``.
Evaluation tasks subclass :class:`EvalTask` and get batching, resume from ``samples.jsonl`` and mean/stderr
aggregation for free; experiments implement ``run`` themselves and use ``ctx`` for seeds, logging and plots.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.store import Run


def mean_stderr(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample standard deviation / sqrt(n); 0 for n < 2)."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def cache_dir() -> Path:
    """Where converted models and the response cache live (``$HARNESS_CACHE``, default ~/.cache/harness)."""
    return Path(os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "harness")


@dataclass
class RunContext:
    """Everything a task needs from the harness for one run."""

    run: Run
    model: str | None  # the model spec, e.g. "hf:smollm2"
    model_args: dict = field(default_factory=dict)
    task_args: dict = field(default_factory=dict)
    seed: int = 0
    limit: int | None = None
    use_cache: bool = True
    probes: list[str] = field(default_factory=list)  # --probe names, for tasks that train
    probe_every: int = 100
    plugins: Any = None
    _lm: Any = None

    def load_model(self, spec: str | None = None, **model_args):
        """The run's model (or another one, for transfer tasks), wrapped in the response cache unless --no-cache.

        The model's fingerprint is recorded in the run's config.
        """
        from harness import backends

        if spec is None and self._lm is not None:
            return self._lm
        from harness.errors import UsageError

        target = spec or self.model
        if not target:
            raise UsageError("this task needs a model: add --model SPEC (e.g. --model hf:smollm2)")
        lm = backends.load(target, **(model_args if spec else self.model_args))
        if self.use_cache:
            from harness.backends.cache import CachedLM

            lm = CachedLM(lm, cache_dir() / "responses.db")
        if spec is None:
            self._lm = lm
            self.run.update_config(fingerprint=lm.fingerprint)
        return lm

    def log(self, step: int, values: dict) -> None:
        """One point of a time series (``metrics.jsonl``)."""
        self.run.log(step, values)

    def record(self, samples: list[dict]) -> None:
        """Append finished samples to ``samples.jsonl`` and tell plugins."""
        self.run.append_samples(samples)
        if self.plugins is not None:
            for sample in samples:
                self.plugins.hook.harness_sample_end(run=self.run, sample=sample)

    def path(self, name: str) -> Path:
        return self.run.path(name)


class EvalTask:
    """Base for evaluation tasks: examples -> per-sample scores -> aggregate metrics with stderr.

    Subclasses set ``name``, ``version``, ``metrics`` (the per-sample numeric fields to aggregate) and implement
    ``examples(seed)`` and ``evaluate(lm, examples)``. Samples are evaluated in chunks of ``chunk_size`` and
    appended as they finish, so an interrupted run resumes where it stopped.
    """

    name = "task"
    version = "1"
    metrics: tuple[str, ...] = ("accuracy",)
    chunk_size = 64
    needs_model = True  # False for tasks scored without a model (evaluate gets lm=None)

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]

    def examples(self, seed: int) -> list[dict]:
        """The examples, each a dict with a unique "id"."""
        raise NotImplementedError

    def evaluate(self, lm, examples: list[dict]) -> list[dict]:
        """One sample record per example: its "id" and a numeric field per name in ``metrics``."""
        raise NotImplementedError

    def aggregate(self, samples: list[dict]) -> dict[str, float]:
        out = {}
        for metric in self.metrics:
            out[metric], out[f"{metric}_stderr"] = mean_stderr([float(s[metric]) for s in samples])
        return out

    def run(self, ctx: RunContext) -> dict[str, float]:
        from tqdm import tqdm

        examples = self.examples(ctx.seed)[: ctx.limit]
        # a sample missing its id or a metric (hand-edited file) is recomputed rather than trusted
        done = {s["id"]: s for s in ctx.run.samples() if "id" in s and all(m in s for m in self.metrics)}
        todo = [e for e in examples if e["id"] not in done]
        if todo:
            lm = ctx.load_model() if self.needs_model else None
            with tqdm(total=len(examples), initial=len(examples) - len(todo), desc=self.name, unit="sample") as bar:
                for start in range(0, len(todo), self.chunk_size):
                    records = self.evaluate(lm, todo[start: start + self.chunk_size])
                    ctx.record(records)
                    done.update((r["id"], r) for r in records)
                    bar.update(len(records))
        return self.aggregate([done[e["id"]] for e in examples])
