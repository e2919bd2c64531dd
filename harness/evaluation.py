"""What a task is, what it gets to work with, and the base class for evaluation tasks.

A task is any object with ``name``, ``version``, ``primary_metric`` and ``run(ctx) -> dict[str, float]``.
Evaluation tasks subclass :class:`EvalTask` and get batching, resume from ``samples.jsonl`` and mean/stderr
aggregation for free; experiments implement ``run`` themselves and use ``ctx`` for seeds, logging and plots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.paths import cache_dir
from harness.stats import mean_stderr  # noqa: F401  (its old home; tasks import it from here)
from harness.store import Run


@dataclass
class RunContext:
    """Everything a task gets from the harness for one run; tasks keep no run state of their own.

    Picklable: a worker process (:meth:`map`) or a Ray task receives the same object, rebuilds the plugin set from
    ``plugin_modules`` and writes into the same run folder (appends of whole lines, which concurrent processes may
    share). The run's lock stays with the process that opened it.
    """

    run: Run
    model: str | None  # the model spec, e.g. "hf:smollm2"
    model_args: dict = field(default_factory=dict)
    task_args: dict = field(default_factory=dict)
    seed: int = 0
    limit: int | None = None
    use_cache: bool = True
    probes: list[str] = field(default_factory=list)  # --probe names, for tasks that train
    probe_every: int = 100
    plugin_modules: list[str] = field(default_factory=list)  # -p modules, loaded again in worker processes
    shard: tuple[int, int] | None = None  # (i, N) under --shard i/N: this run scores every N-th sample from the i-th
    threads: int | None = None  # the task's torch threads (its ``threads``): the run and ctx.map's workers use them
    _lm: Any = field(default=None, repr=False, compare=False)
    split: bool = field(default=False, repr=False, compare=False)  # whether the task took its shard (in_shard)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_lm": None}  # an engine stays in the process that loaded it

    @property
    def plugins(self):
        from harness.registry import get_plugins, plugins_with

        return plugins_with(self.plugin_modules) if self.plugin_modules else get_plugins()

    def seed_for(self, *parts) -> int:
        """A seed for the random stream named by ``parts`` (see :mod:`harness.seeding`)."""
        from harness.seeding import derive_seed

        return derive_seed(self.seed, *parts)

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
        from harness.efficiency import watch

        lm = watch(backends.load(target, **(model_args if spec else self.model_args)))  # timed into efficiency.json
        if self.use_cache:
            from harness.backends.cache import CachedLM

            lm = CachedLM(lm, cache_dir() / "responses.db")
        if spec is None:
            self._lm = lm
            self.run.update_config(fingerprint=lm.fingerprint)
        return lm

    @property
    def engine(self):
        """The run's loaded model, or None before :meth:`load_model` (or :meth:`adopt_engine`)."""
        return self._lm

    def adopt_engine(self, lm) -> None:
        """Use an already loaded model as the run's (a suite shares one engine between its runs)."""
        self._lm = lm
        self.run.update_config(fingerprint=lm.fingerprint)

    def in_shard(self, items: list) -> list:
        """This run's share of ``items`` (all of them unless the run is a shard): every N-th by position from the
        i-th, so the shards are disjoint, cover everything, and ``harness merge`` can interleave them back."""
        if self.shard is None:
            return items
        from harness.errors import UsageError

        index, count = self.shard
        self.split = True
        if count > len(items):
            raise UsageError(f"--shard {index}/{count}: the run has {len(items)} samples; give at most that many")
        return items[index::count]

    def log(self, step: int, values: dict) -> None:
        """One point of a time series (``metrics.jsonl``)."""
        self.run.log(step, values)

    def record(self, samples: list[dict]) -> None:
        """Append finished samples to ``samples.jsonl`` and tell plugins."""
        self.run.append_samples(samples)
        hook = self.plugins.hook
        for sample in samples:
            hook.harness_sample_end(run=self.run, sample=sample)

    def path(self, name: str) -> Path:
        """Where to write an artifact (a plot, a checkpoint, a sub-folder) of this run."""
        return self.run.path(name)

    def trainer(self, model, config, batches, name: str = "train", prefix: str | None = None, **options):
        """A :class:`harness.training.Trainer` wired to this run: checkpoints in ``<run>/<name>``, the series in
        ``metrics.jsonl`` (keys prefixed ``prefix``, default ``<name>/`` unless ``name`` is "train"), the ``--probe``
        probes, and the ``harness_train_step`` hook of every plugin."""
        from harness.training import Trainer, make_probes

        hooks = self.plugins.hook  # first: a worker process loads the -p modules, whose probes may be asked for
        if prefix is None:
            prefix = "" if name == "train" else f"{name}/"

        logged = {(r["step"], k) for r in self.run.series() for k in r}  # before an interruption

        def log(step: int, values: dict) -> None:
            # a resumed trainer repeats the steps after its last checkpoint: each (step, series) is kept once
            fresh = {prefix + k: v for k, v in values.items() if (step, prefix + k) not in logged}
            if fresh:
                self.log(step, fresh)

        options.setdefault("probes", make_probes(self.probes))
        options.setdefault("probe_every", self.probe_every)
        options.setdefault("desc", name.replace("-", " "))  # "train-dfs" -> the bar "train dfs"
        from harness.efficiency import watch_trainer

        return watch_trainer(Trainer(model, config, batches, run_dir=self.path(name), log=log, hooks=hooks, **options))

    def map(self, function, items, workers: int) -> list:
        """``[function(self, item) for item in items]`` in up to ``workers`` processes that die with this one, each
        on the task's torch threads."""
        from functools import partial

        from harness.workers import map_in_processes

        return map_in_processes(partial(function, self), items, workers, self.threads)


class EvalTask:
    """Base for evaluation tasks: examples -> per-sample scores -> aggregate metrics with stderr.

    Subclasses set ``name``, ``version``, ``metrics`` (the per-sample numeric fields to aggregate; the first is the
    primary metric) and implement ``examples(ctx)`` and ``evaluate(lm, examples, ctx)``. Samples are evaluated in
    chunks of ``chunk_size`` and appended as they finish, so an interrupted run resumes where it stopped.
    """

    name = "task"
    version = "1"
    metrics: tuple[str, ...] = ("accuracy",)
    chunk_size = 64
    needs_model = True  # False for tasks scored without a model (evaluate gets lm=None)

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]

    def shardable(self, model: str | None) -> bool:
        """Whether ``--shard i/N`` can split this task's run (its samples) on ``model``; a task without this
        method is refused a shard before anything runs."""
        return True

    def examples(self, ctx: RunContext) -> list[dict]:
        """The examples, each a dict with a unique "id" (seeded by ``ctx.seed`` where random)."""
        raise NotImplementedError

    def evaluate(self, lm, examples: list[dict], ctx: RunContext) -> list[dict]:
        """One sample record per example: its "id" and a numeric field per name in ``metrics``."""
        raise NotImplementedError

    def aggregate(self, samples: list[dict]) -> dict[str, float]:
        out = {}
        for metric in self.metrics:
            out[metric], out[f"{metric}_stderr"] = mean_stderr([float(s[metric]) for s in samples])
        return out

    def run(self, ctx: RunContext) -> dict[str, float]:
        from tqdm import tqdm

        examples = ctx.in_shard(self.examples(ctx)[: ctx.limit])
        # a sample missing its id or a metric (hand-edited file) is recomputed rather than trusted
        done = {s["id"]: s for s in ctx.run.samples() if "id" in s and all(m in s for m in self.metrics)}
        todo = [e for e in examples if e["id"] not in done]
        if todo:
            lm = ctx.load_model() if self.needs_model else None
            with tqdm(total=len(examples), initial=len(examples) - len(todo), desc=self.name, unit="sample") as bar:
                for start in range(0, len(todo), self.chunk_size):
                    records = self.evaluate(lm, todo[start : start + self.chunk_size], ctx)
                    ctx.record(records)
                    done.update((r["id"], r) for r in records)
                    bar.update(len(records))
        return self.aggregate([done[e["id"]] for e in examples])
