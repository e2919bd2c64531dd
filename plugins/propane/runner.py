"""The optimizers ``harness optimize`` builds, the ``propane_compare`` task, and what their runs write.

A run folder gets: ``best_prompt.json`` (text and token ids), ``documents.jsonl`` (train and held-out documents
with log P(d|p*)), ``metrics.jsonl`` (train and held-out KL per step), ``kl_curve.png`` and ``samples.jsonl``
(one record per method with its best prompt). Runs are deterministic, so a resumed run simply starts over.
"""

from __future__ import annotations

import dataclasses
import json

from harness.errors import UsageError
from harness.store import write_json_atomic


class PropaneOptimizer:
    """``harness optimize --optimizer propane``: one search, one run folder."""

    version = "2"  # 2: bfloat16 ranking of proposals; soft runs report the projected prompt's KL
    primary_metric = "kl_heldout_best"
    method = "propane"

    def __init__(
        self,
        target_prompt: str | None = None,
        documents: str | None = None,
        steps: int = 100,
        prompt_len: int | None = None,
        topk: int = 256,
        n_docs: int = 32,
        n_heldout: int | None = None,
        doc_len: int = 32,
        gamma: float = 0.0,
        init: str | None = None,
        batch_size: int = 64,
        kl_threshold: float | None = None,
        eval_every: int = 1,
        max_batch_tokens: int = 8192,
        rank_dtype: str = "bfloat16",
        rescore: int = 4,
        lr: float = 0.01,
        chat: bool | None = None,
    ):
        from harness.plugins.propane.problem import Settings

        if lr <= 0:
            raise UsageError(f"lr={lr}: the soft-prompt learning rate must be positive")
        self.lr = lr
        self.chat = chat
        self.settings = Settings(
            target_prompt=target_prompt,
            documents=documents,
            steps=steps,
            prompt_len=prompt_len,
            topk=topk,
            n_docs=n_docs,
            n_heldout=n_heldout,
            doc_len=doc_len,
            gamma=gamma,
            init=init,
            batch_size=batch_size,
            kl_threshold=kl_threshold,
            eval_every=eval_every,
            max_batch_tokens=max_batch_tokens,
            rank_dtype=rank_dtype,
            rescore=rescore,
        )
        self.settings.check()

    def run(self, ctx) -> dict[str, float]:
        problem = build_problem(ctx, self.settings, self.chat)
        trace = search(problem, self.method, ctx.log, self.lr)
        return write_outputs(ctx, problem, [trace])


class RandomSearch(PropaneOptimizer):
    """``--optimizer random``: random single-token swaps with PROPANE's budget of loss evaluations."""

    method = "random"


class SoftPropane(PropaneOptimizer):
    """``--optimizer propane-soft``: Adam on prompt embeddings (``--args lr=0.01``), reported with its projection."""

    method = "propane-soft"


class CompareTask:
    """``harness run --task propane_compare``: PROPANE and the random baseline, same budget, one plot."""

    version = "2"
    primary_metric = "kl_heldout_best"

    def __init__(self, **options):
        chat = options.pop("chat", None)
        self.optimizer = PropaneOptimizer(chat=chat, **options)
        self.settings = self.optimizer.settings

    @property
    def name(self) -> str:
        return "propane_compare"

    def run(self, ctx) -> dict[str, float]:
        problem = build_problem(ctx, self.settings, self.optimizer.chat)
        traces = [search(problem, method, ctx.log) for method in ("propane", "random")]
        return write_outputs(ctx, problem, traces)


def build_problem(ctx, settings, chat: bool | None):
    """Load the run's model and set up documents and objectives (seeded by the run's seed)."""
    import torch
    from harness.plugins.propane.problem import Problem

    torch.manual_seed(ctx.seed)
    for name in ("metrics.jsonl", "samples.jsonl"):  # a rerun of the same config recomputes everything
        ctx.path(name).unlink(missing_ok=True)
    chat = bool(ctx.model_args.get("chat", False)) if chat is None else chat
    return Problem(ctx.load_model(), dataclasses.replace(settings), ctx.seed, chat=chat)


def search(problem, method: str, log, lr: float = 0.01):
    from harness.plugins.propane import search as searches

    if method == "propane-soft":
        return searches.soft_search(problem, log, lr=lr)
    proposer = searches.GradientProposer(problem) if method == "propane" else searches.RandomProposer(problem)
    return searches.swap_search(problem, proposer, log)


def write_outputs(ctx, problem, traces) -> dict[str, float]:
    """Write files and return metrics; with several traces the first is primary and each gets suffixed copies."""
    from harness.plugins.propane.search import summarise

    metrics, prompts = {}, []
    for index, trace in enumerate(traces):
        values = summarise(problem, trace)
        prompt = prompt_record(problem, trace, values)
        prompts.append(prompt)
        if index == 0:
            metrics.update(values)
        if len(traces) > 1:
            metrics.update({f"{k}_{trace.method}": v for k, v in values.items()})
    write_json_atomic(ctx.path("best_prompt.json"), prompts[0] if len(prompts) == 1 else {"methods": prompts})
    with open(ctx.path("documents.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in problem.document_records())
    ctx.record([{"id": p["method"], **p} for p in prompts])
    plot_curves(ctx.path("kl_curve.png"), traces)
    return metrics


def prompt_record(problem, trace, values: dict) -> dict:
    """best_prompt.json: the best prompt as text and ids, what it was searched for, and how well it does."""
    text = problem.box.decode(trace.best_ids)
    return {
        "method": trace.method,
        "text": text,
        "token_ids": trace.best_ids,
        "roundtrip_ok": problem.box.encode(text) == trace.best_ids,
        "target_prompt": problem.settings.target_prompt,
        "init": problem.box.decode(problem.init_ids),
        "init_ids": problem.init_ids,
        "chat": problem.box.chat,
        "best_step": trace.best_step,
        "kl_heldout": values["kl_heldout_best"],
        "kl_heldout_stderr": values["kl_heldout_best_stderr"],
        "kl_heldout_initial": values["kl_heldout_initial"],
        "doc_len": problem.settings.doc_len,
    }


def plot_curves(path, traces) -> None:
    """Train and held-out KL per step; every method in the same plot."""
    from harness.report import plot_lines

    series = {}
    for trace in traces:
        train = [(r["step"], r["kl_train"]) for r in trace.history if "kl_train" in r]
        heldout = [(r["step"], r["kl_heldout"]) for r in trace.history if "kl_heldout" in r]
        if train:
            series[f"{trace.method} train"] = tuple(zip(*train))
        if heldout:
            series[f"{trace.method} held-out"] = tuple(zip(*heldout))
    plot_lines(path, series, xlabel="step", ylabel="KL(p* || p) per document (nats)", title="prompt inversion")
