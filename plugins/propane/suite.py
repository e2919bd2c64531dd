"""``harness run --task propane_suite``: PROPANE against random search over a set of target prompts, paired.

For each target prompt (``suite_prompts.json``, shipped with the package: ten requests of 5-20 tokens on different
topics) and each seed, one problem is built (its documents, held-out documents and the "! " start), and both searches
run on it with the same budget of loss evaluations (``steps`` x ``batch_size`` proposals). Per prompt the held-out KL
before and after each search is recorded; the comparison is paired by prompt:

- per method, the held-out KL reduction (initial - best) with its mean and stderr over prompts;
- the per-prompt difference of the searches' final held-out KL, PROPANE minus random (negative: PROPANE's prompt
  matches the target better), its mean and stderr over prompts, and a two-sided exact sign test on the number of
  prompts each method wins (ties dropped, as the sign test does).

Choices: with several seeds a prompt's value is its mean over seeds (the prompts are the units of the paired test,
the seeds only reduce each prompt's noise). The held-out KL is evaluated at steps 0 and ``steps`` only (plus every
``eval_every``), the training KL every step (it is free: the accepted proposal was scored).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources

from harness.errors import UsageError
from harness.evaluation import mean_stderr

METHODS = ("propane", "random")


def shipped_prompts() -> list[str]:
    """The target prompts that ship with the package."""
    text = resources.files("harness.plugins.propane").joinpath("suite_prompts.json").read_text()
    return json.loads(text)


def read_prompts(path: str) -> list[str]:
    """Target prompts from a JSON file holding a list of strings (``--task-args prompts=FILE.json``)."""
    from pathlib import Path

    file = Path(path)
    if not file.exists():
        raise UsageError(f"prompts={path}: no such file; give a JSON file with a list of prompt strings")
    try:
        prompts = json.loads(file.read_text())
    except json.JSONDecodeError:
        prompts = None
    if not isinstance(prompts, list) or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise UsageError(f"prompts={path}: expected a JSON list of non-empty strings")
    return prompts


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test: P(a split at least this uneven | each non-tied pair is a fair coin)."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_summary(initial: list[float], best: dict[str, list[float]]) -> dict[str, float]:
    """The suite's metrics from per-prompt held-out KLs: ``initial`` and ``best[method]`` (one value per prompt)."""
    metrics: dict[str, float] = {}
    for method in METHODS:
        reduction = [i - b for i, b in zip(initial, best[method])]
        metrics[f"kl_reduction_{method}"], metrics[f"kl_reduction_{method}_stderr"] = mean_stderr(reduction)
        metrics[f"kl_best_{method}"], metrics[f"kl_best_{method}_stderr"] = mean_stderr(best[method])
    metrics["kl_initial"], metrics["kl_initial_stderr"] = mean_stderr(initial)
    difference = [p - r for p, r in zip(best["propane"], best["random"])]
    metrics["paired_kl_diff"], metrics["paired_kl_diff_stderr"] = mean_stderr(difference)
    wins, losses = sum(d < 0 for d in difference), sum(d > 0 for d in difference)
    metrics.update(propane_wins=wins, propane_losses=losses, ties=len(difference) - wins - losses)
    metrics["sign_test_p"] = sign_test(wins, losses)
    metrics["prompts"] = len(initial)
    return metrics


class SuiteTask:
    """PROPANE vs random swaps over a prompt set, paired by prompt (see the module docstring)."""

    name = "propane_suite"
    version = "1"
    primary_metric = "paired_kl_diff"

    def __init__(
        self,
        prompts: str = "",
        n_prompts: int = 0,
        seeds: int = 1,
        steps: int = 16,
        prompt_len: int = 10,
        topk: int = 256,
        n_docs: int = 8,
        n_heldout: int = 16,
        doc_len: int = 8,
        batch_size: int = 10,
        eval_every: int = 10,
        rank_dtype: str = "bfloat16",
        rescore: int = 4,
        max_batch_tokens: int = 8192,
        chat: bool = False,
        threads: int = 1,
        workers: int = 1,
    ):
        from harness.plugins.propane.problem import Settings

        self.targets = read_prompts(prompts) if prompts else shipped_prompts()
        if n_prompts < 0 or n_prompts > len(self.targets):
            raise UsageError(f"n_prompts={n_prompts}: choose 1..{len(self.targets)} (0: all of them)")
        if n_prompts:
            self.targets = self.targets[:n_prompts]
        if len(self.targets) < 2:
            raise UsageError("propane_suite needs at least 2 target prompts for a paired comparison")
        if seeds < 1:
            raise UsageError(f"seeds={seeds}: give a positive number of seeds per prompt")
        if threads < 1 or workers < 1:
            raise UsageError(f"threads={threads}, workers={workers}: give positive numbers of threads and processes")
        self.seeds, self.chat, self.threads, self.workers = seeds, chat, threads, workers
        self.cores = threads * workers  # what a sweep reserves for one run
        self.settings = Settings(
            target_prompt=self.targets[0],
            steps=steps,
            prompt_len=prompt_len,
            topk=topk,
            n_docs=n_docs,
            n_heldout=n_heldout,
            doc_len=doc_len,
            batch_size=batch_size,
            eval_every=eval_every,
            rank_dtype=rank_dtype,
            rescore=rescore,
            max_batch_tokens=max_batch_tokens,
        )
        self.settings.check()
        if n_heldout < 2:
            raise UsageError(f"n_heldout={n_heldout}: the held-out KL needs at least 2 documents for its stderr")

    def run(self, ctx) -> dict[str, float]:
        for name in ("metrics.jsonl", "samples.jsonl"):  # deterministic: a rerun recomputes everything
            ctx.path(name).unlink(missing_ok=True)
        jobs = [
            PromptJob(index, target, self.settings, self.seeds, self.chat, self.threads)
            for index, target in enumerate(self.targets)
        ]
        results = ctx.map(solve_prompt, jobs, self.workers)  # in prompt order, whichever process ran each
        initial, best = [], {m: [] for m in METHODS}
        curves = {m: [] for m in METHODS}  # per prompt and seed: training KL per step
        for index, result in enumerate(results):
            initial.append(result["initial"])
            for method in METHODS:
                best[method].append(result[method])
                curves[method].extend(result["curves"][method])
            ctx.record(result["samples"])
            ctx.log(index, {"kl_initial": initial[-1], **{f"kl_best_{m}": best[m][-1] for m in METHODS}})
        metrics = paired_summary(initial, best)
        plot_pairs(ctx.path("paired_kl.png"), self.targets, initial, best)
        plot_training_curves(ctx.path("kl_train_curves.png"), curves)
        return metrics


@dataclass
class PromptJob:
    """One target prompt's share of the suite (picklable: it may run in a worker process)."""

    index: int
    target: str
    settings: object  # problem.Settings, its target_prompt replaced by ``target``
    seeds: int
    chat: bool
    threads: int


_MODELS: dict = {}  # a worker process loads the model once, whatever number of prompts it runs


def solve_prompt(ctx, job: PromptJob) -> dict:
    """Both searches on one target prompt for each seed; values are means over seeds."""
    import dataclasses

    import torch
    from harness.plugins.propane.problem import Problem

    torch.set_num_threads(job.threads)
    if ctx.model not in _MODELS:
        _MODELS[ctx.model] = ctx.load_model()
    settings = dataclasses.replace(job.settings, target_prompt=job.target)
    runs, samples, curves = [], [], {m: [] for m in METHODS}
    for repeat in range(job.seeds):
        torch.manual_seed(ctx.seed_for("propane-suite", job.index, repeat))
        problem = Problem(_MODELS[ctx.model], settings, ctx.seed_for("propane-suite", job.index, repeat), job.chat)
        runs.append(both_searches(problem, f"prompt{job.index}/seed{repeat}", samples, curves))
    result = {key: sum(r[key] for r in runs) / len(runs) for key in ("initial", *METHODS)}
    return {**result, "samples": samples, "curves": curves}


def both_searches(problem, name: str, samples: list, curves: dict) -> dict:
    """PROPANE and random search on one problem (same documents, start and budget): the held-out KLs."""
    from harness.plugins.propane import search

    result = {"initial": problem.heldout_kl(problem.init_ids)[0]}
    for method in METHODS:
        proposer = search.GradientProposer(problem) if method == "propane" else search.RandomProposer(problem)
        trace = search.swap_search(problem, proposer, lambda step, record: None)
        values = search.summarise(problem, trace)
        result[method] = values["kl_heldout_best"]
        curves[method].append([r["kl_train"] for r in trace.history])
        samples.append(
            {
                "id": f"{name}/{method}",
                "target_prompt": problem.settings.target_prompt,
                "target_tokens": len(problem.target_ids),
                "method": method,
                "best_prompt": problem.box.decode(trace.best_ids),
                "best_ids": trace.best_ids,
                "best_step": trace.best_step,
                **{k: v for k, v in values.items() if k.startswith("kl_")},
                "loss_evaluations": trace.evaluations,
                "search_seconds": trace.search_seconds,
            }
        )
    return result


def plot_pairs(path, targets: list[str], initial: list[float], best: dict[str, list[float]]) -> None:
    """Left: per prompt, the held-out KL before and after each search. Right: PROPANE against random, one point per
    prompt (below the diagonal: PROPANE's prompt is the better match)."""
    from harness.report import figure

    plt = figure()
    fig, (bars, scatter) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.6, 1]})
    xs = range(len(targets))
    width = 0.27
    bars.bar([x - width for x in xs], initial, width, label="initial ('! ' x L)", color="0.7")
    bars.bar(list(xs), best["random"], width, label="random search", color="tab:orange")
    bars.bar([x + width for x in xs], best["propane"], width, label="PROPANE", color="tab:blue")
    bars.set_xticks(list(xs), [f"p{i}" for i in xs])
    bars.set(xlabel="target prompt", ylabel="held-out KL per document (nats)", title="before and after search")
    bars.legend(fontsize=8)
    bars.grid(alpha=0.3, axis="y")
    scatter.scatter(best["random"], best["propane"], color="tab:blue")
    for i, (r, p) in enumerate(zip(best["random"], best["propane"])):
        scatter.annotate(f"p{i}", (r, p), fontsize=7, xytext=(3, 3), textcoords="offset points")
    low = min(best["random"] + best["propane"])
    high = max(best["random"] + best["propane"])
    scatter.plot([low, high], [low, high], color="0.5", linestyle="--", linewidth=1)
    scatter.set(xlabel="random search: held-out KL", ylabel="PROPANE: held-out KL", title="paired by prompt")
    scatter.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_training_curves(path, curves: dict[str, list[list[float]]]) -> None:
    """Mean training KL over prompts (and seeds) per step, with stderr bands, one line per method."""
    from harness.report import plot_lines

    series, errors = {}, {}
    for method, rows in curves.items():
        length = min(len(r) for r in rows)  # early stops would shorten a curve
        stats = [mean_stderr([r[step] for r in rows]) for step in range(length)]
        series[method] = (list(range(length)), [s[0] for s in stats])
        errors[method] = [s[1] for s in stats]
    plot_lines(path, series, "step", "training KL per document (nats)", "mean over prompts", errors=errors)
