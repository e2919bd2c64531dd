"""``harness run --task propane_suite``: PROPANE against random search over a set of target prompts, paired.

For each target prompt (``suite_prompts.json``, shipped with the package: ten requests of 5-20 tokens on different
topics) and each seed, one problem is built (its documents and held-out documents), and two arms search on it with
the same budget of loss evaluations (``steps`` x ``batch_size`` proposals). An arm is a method and a start,
``method@init`` (``arms=propane,random``, the default, is PROPANE against random search, both from "! " x
``prompt_len``; ``arms=propane@original,propane@random`` is the warm-start study). Starts: ``bang`` ("! " x
``prompt_len``, the paper's), ``original`` (the target prompt itself: a warm start) and ``random`` (uniformly random
allowed tokens, seeded per prompt and seed); ``prompt_len=0`` gives ``bang`` and ``random`` the target's own length.
Per prompt the held-out KL before and after each search and the training KL of the found prompt are recorded; the
comparison is paired by prompt:

- per arm, the held-out KL reduction (initial - best) and the found prompt's training and held-out KL, with their
  means and stderrs over prompts (training KL well below held-out KL is the search fitting its few documents);
- the per-prompt difference of the arms' final held-out KL, first arm minus second (negative: the first arm's
  prompt matches the target better), its mean and stderr over prompts, and a two-sided exact sign test on the
  number of prompts each arm wins (ties dropped, as the sign test does).

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
from harness.report import save_figure

METHODS = ("propane", "random")
INITS = ("bang", "original", "random")


@dataclass(frozen=True)
class Arm:
    """One search of the suite: a method and the prompt it starts from."""

    method: str
    init: str = "bang"

    @property
    def label(self) -> str:
        """The arm's name in metrics: the method alone for the paper's start, ``method_from_init`` otherwise."""
        return self.method if self.init == "bang" else f"{self.method}_from_{self.init}"


def parse_arms(text: str) -> tuple[Arm, Arm]:
    """``"propane,random"`` or ``"propane@original,propane@random"``: exactly two distinct arms."""
    arms = []
    for part in text.split(","):
        method, _, init = part.strip().partition("@")
        if method not in METHODS or (init or "bang") not in INITS:
            raise UsageError(
                f"arms={text}: each arm is method[@init] with method in {', '.join(METHODS)} and init in "
                f"{', '.join(INITS)}, e.g. arms=propane@original,propane@random"
            )
        arms.append(Arm(method, init or "bang"))
    if len(arms) != 2 or arms[0] == arms[1]:
        raise UsageError(f"arms={text}: give two different arms for the paired comparison, e.g. arms=propane,random")
    return arms[0], arms[1]


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


def paired_summary(
    initial: dict[str, list[float]], best: dict[str, list[float]], train: dict[str, list[float]] | None = None
) -> dict[str, float]:
    """The suite's metrics from per-prompt KLs, keyed by arm label (one value per prompt): held-out KL of the start
    (``initial``) and of the found prompt (``best``), and the found prompt's training KL (``train``). The first arm
    is compared with the second; ``kl_initial`` is reported once when both arms start from the same prompt."""
    first, second = list(best)
    metrics: dict[str, float] = {}
    for label in (first, second):
        reduction = [i - b for i, b in zip(initial[label], best[label])]
        metrics[f"kl_reduction_{label}"], metrics[f"kl_reduction_{label}_stderr"] = mean_stderr(reduction)
        metrics[f"kl_best_{label}"], metrics[f"kl_best_{label}_stderr"] = mean_stderr(best[label])
        if train is not None:
            metrics[f"kl_train_{label}"], metrics[f"kl_train_{label}_stderr"] = mean_stderr(train[label])
            gap = [h - t for h, t in zip(best[label], train[label])]  # held-out minus training KL, per prompt
            metrics[f"kl_gap_{label}"], metrics[f"kl_gap_{label}_stderr"] = mean_stderr(gap)
        if initial[first] != initial[second]:
            metrics[f"kl_initial_{label}"], metrics[f"kl_initial_{label}_stderr"] = mean_stderr(initial[label])
    if initial[first] == initial[second]:
        metrics["kl_initial"], metrics["kl_initial_stderr"] = mean_stderr(initial[first])
    difference = [a - b for a, b in zip(best[first], best[second])]
    metrics["paired_kl_diff"], metrics["paired_kl_diff_stderr"] = mean_stderr(difference)
    wins, losses = sum(d < 0 for d in difference), sum(d > 0 for d in difference)
    metrics.update({f"{first}_wins": wins, f"{first}_losses": losses, "ties": len(difference) - wins - losses})
    metrics["sign_test_p"] = sign_test(wins, losses)
    metrics["prompts"] = len(difference)
    return metrics


class SuiteTask:
    """Two search arms over a prompt set, paired by prompt (see the module docstring)."""

    name = "propane_suite"
    version = "2"  # 2: arms with starts; training KL and the held-out minus training gap per arm
    primary_metric = "paired_kl_diff"

    def __init__(
        self,
        prompts: str = "",
        n_prompts: int = 0,
        arms: str = "propane,random",
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
        if prompt_len < 0:
            raise UsageError(f"prompt_len={prompt_len}: give a positive length (0: each target's own length)")
        self.arms = parse_arms(arms)
        self.seeds, self.chat, self.threads, self.workers = seeds, chat, threads, workers
        self.cores = threads * workers  # what a sweep reserves for one run
        self.settings = Settings(
            target_prompt=self.targets[0],
            steps=steps,
            prompt_len=prompt_len or None,  # None: each arm's start takes the target's length
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
            PromptJob(index, target, self.settings, self.seeds, self.chat, self.arms)
            for index, target in enumerate(self.targets)
        ]
        results = ctx.map(solve_prompt, jobs, self.workers)  # in prompt order, whichever process ran each
        labels = [arm.label for arm in self.arms]
        initial, best, train = ({label: [] for label in labels} for _ in range(3))
        curves = {label: [] for label in labels}  # per prompt and seed: training KL per step
        for index, result in enumerate(results):
            for label in labels:
                initial[label].append(result["initial"][label])
                best[label].append(result["best"][label])
                train[label].append(result["train"][label])
                curves[label].extend(result["curves"][label])
            ctx.record(result["samples"])
            ctx.log(
                index, {f"kl_{kind}_{label}": result[kind][label] for kind in ("best", "train") for label in labels}
            )
        metrics = paired_summary(initial, best, train)
        plot_pairs(ctx.path("paired_kl.png"), self.targets, initial, best, train)
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
    arms: tuple = (Arm("propane"), Arm("random"))


_MODELS: dict = {}  # a worker process loads the model once, whatever number of prompts it runs


def solve_prompt(ctx, job: PromptJob) -> dict:
    """Both arms on one target prompt for each seed; values are means over seeds (on the suite's ``threads``, which
    the run sets in its process and in ctx.map's workers)."""
    import dataclasses

    import torch
    from harness.plugins.propane.problem import Problem

    if ctx.model not in _MODELS:
        _MODELS[ctx.model] = ctx.load_model()
    settings = dataclasses.replace(job.settings, target_prompt=job.target)
    runs, samples, curves = [], [], {arm.label: [] for arm in job.arms}
    for repeat in range(job.seeds):
        torch.manual_seed(ctx.seed_for("propane-suite", job.index, repeat))
        problem = Problem(_MODELS[ctx.model], settings, ctx.seed_for("propane-suite", job.index, repeat), job.chat)
        runs.append(both_searches(problem, f"prompt{job.index}/seed{repeat}", samples, curves, job.arms))
    result = {
        kind: {arm.label: sum(r[kind][arm.label] for r in runs) / len(runs) for arm in job.arms}
        for kind in ("initial", "best", "train")
    }
    return {**result, "samples": samples, "curves": curves}


def start_ids(problem, init: str) -> list[int]:
    """The prompt an arm starts from: "! " x L, the target itself, or L uniformly random allowed tokens (seeded by
    the problem's seed); L is ``prompt_len``, or the target's length when it is not set."""
    import torch

    from harness import seeding

    length = problem.settings.prompt_len or len(problem.target_ids)
    if init == "original":
        return list(problem.target_ids)
    if init == "random":
        allowed = problem.allowed.nonzero()[:, 0]
        pick = torch.randint(len(allowed), (length,), generator=seeding.generator(problem.seed, "propane-random-init"))
        return allowed[pick].tolist()
    return problem.box.exclamations(length)


def both_searches(problem, name: str, samples: list, curves: dict, arms=(Arm("propane"), Arm("random"))) -> dict:
    """Two arms on one problem (same documents and budget): held-out KL before and after, training KL after."""
    from harness.plugins.propane import search

    result = {"initial": {}, "best": {}, "train": {}}
    for arm in arms:
        problem.init_ids = start_ids(problem, arm.init)  # swap_search and summarise start from it
        proposer = search.GradientProposer(problem) if arm.method == "propane" else search.RandomProposer(problem)
        trace = search.swap_search(problem, proposer, lambda step, record: None)
        values = search.summarise(problem, trace)
        result["initial"][arm.label] = values["kl_heldout_initial"]
        result["best"][arm.label] = values["kl_heldout_best"]
        result["train"][arm.label] = values["kl_train_best"]
        curves[arm.label].append([r["kl_train"] for r in trace.history])
        samples.append(
            {
                "id": f"{name}/{arm.label}",
                "target_prompt": problem.settings.target_prompt,
                "target_tokens": len(problem.target_ids),
                "method": arm.method,
                "init": arm.init,
                "init_prompt": problem.box.decode(problem.init_ids),
                "init_ids": list(problem.init_ids),
                "best_prompt": problem.box.decode(trace.best_ids),
                "best_ids": trace.best_ids,
                "best_step": trace.best_step,
                **{k: v for k, v in values.items() if k.startswith("kl_")},
                "loss_evaluations": trace.evaluations,
                "search_seconds": trace.search_seconds,
            }
        )
    return result


NAMES = {"propane": "PROPANE", "random": "random search"}
STARTS = {"bang": "'! ' x L", "original": "the original prompt", "random": "random tokens"}


def arm_name(label: str) -> str:
    """A plot's name for an arm label: "PROPANE", "PROPANE from the original prompt", ..."""
    method, _, init = label.partition("_from_")
    return NAMES[method] + (f" from {STARTS[init]}" if init else "")


def plot_pairs(path, targets: list[str], initial: dict, best: dict, train: dict | None = None) -> None:
    """Left: per prompt, the held-out KL of each arm's start and found prompt (dots: the found prompt's training
    KL). Right: the first arm against the second, one point per prompt (below the diagonal: the first arm's prompt
    is the better match)."""
    from harness.report import figure

    first, second = list(best)
    starts = [first] if initial[first] == initial[second] else [first, second]
    bars_per_prompt = len(starts) + 2
    plt = figure()
    fig, (bars, scatter) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.6, 1]})
    xs = list(range(len(targets)))
    width = 0.8 / bars_per_prompt
    offset = lambda k: [x + (k - (bars_per_prompt - 1) / 2) * width for x in xs]  # noqa: E731
    for k, label in enumerate(starts):
        name = "start" if len(starts) == 1 else f"start of {arm_name(label)}"
        bars.bar(offset(k), initial[label], width, label=name, color=("0.75", "0.55")[k])
    for k, (label, color) in enumerate(((second, "tab:orange"), (first, "tab:blue")), start=len(starts)):
        bars.bar(offset(k), best[label], width, label=f"{arm_name(label)}: held-out", color=color)
        if train is not None:
            bars.scatter(offset(k), train[label], color="black", s=10, zorder=3)
    if train is not None:
        bars.scatter([], [], color="black", s=10, label="training KL of the found prompt")
    bars.set_xticks(xs, [f"p{i}" for i in xs])
    bars.set(xlabel="target prompt", ylabel="KL per document (nats)", title="before and after search")
    bars.legend(fontsize=7)
    bars.grid(alpha=0.3, axis="y")
    scatter.scatter(best[second], best[first], color="tab:blue")
    for i, (b, a) in enumerate(zip(best[second], best[first])):
        scatter.annotate(f"p{i}", (b, a), fontsize=7, xytext=(3, 3), textcoords="offset points")
    low, high = min(best[second] + best[first]), max(best[second] + best[first])
    scatter.plot([low, high], [low, high], color="0.5", linestyle="--", linewidth=1)
    scatter.set(
        xlabel=f"{arm_name(second)}: held-out KL", ylabel=f"{arm_name(first)}: held-out KL", title="paired by prompt"
    )
    scatter.grid(alpha=0.3)
    save_figure(fig, path)


def plot_training_curves(path, curves: dict[str, list[list[float]]]) -> None:
    """Mean training KL over prompts (and seeds) per step, with stderr bands, one line per arm."""
    from harness.report import plot_lines

    series, errors = {}, {}
    for method, rows in curves.items():
        length = min(len(r) for r in rows)  # early stops would shorten a curve
        stats = [mean_stderr([r[step] for r in rows]) for step in range(length)]
        series[method] = (list(range(length)), [s[0] for s in stats])
        errors[method] = [s[1] for s in stats]
    plot_lines(path, series, "step", "training KL per document (nats)", "mean over prompts", errors=errors)
