"""``harness run --task propane_transfer --task-args source=...``: found prompts scored on another model.

``source`` is a PROPANE run (``harness optimize`` or ``propane_compare``: its best_prompt.json) or a
``propane_suite`` run or record folder (its samples.jsonl: every target prompt, arm and seed); ``{seed}`` in it is
replaced by the run's seed, so ``harness sweep --seeds 0,1,2`` scores each seed's search with that seed's documents
and random prompts and pairs them by seed (``source=docs/results/propane/suite_seeds/seed{seed}``). For each target
prompt p* the other model (the run's ``--model``) samples fresh documents from p*; each found prompt is
re-tokenized by the other model's tokenizer from its text and scored by the KL estimate log P(d|p*) - log P(d|p).
Reference points, scored on the same documents:

- ``init``: the source search's start ("! " x L), where the source recorded it;
- ``random_prompts``: ``n_random`` prompts of uniformly random allowed tokens of the other model, as many tokens as
  the re-tokenized first found prompt (seeded per target prompt); the per-document KL is their mean;
- the original prompt p* itself scores 0 on every document by construction (the documents are its samples), so
  ``closed_<name>`` = 1 - KL(name) / KL(random prompts) is the share of the way from random prompts to p*.

Output similarity (cheap, from the same forward passes): ``agreement`` is the fraction of document positions where
the greedy next token under p equals the greedy next token under p*.

One source run: metrics are means over documents (stderr over documents). A suite: each target prompt's value is
its mean over documents (and over the source's seeds), and metrics are means over target prompts (stderr over
prompts), paired by prompt: ``diff_A_B`` = KL(A) - KL(B) with its stderr, ``wins_A_B``/``losses_A_B`` (prompts
where A's KL is lower/higher) and ``sign_p_A_B`` (two-sided exact sign test). The names: ``transfer`` for the
source's first method (PROPANE), ``random`` for random search's prompt, ``init``, ``random_prompts``; the source
model's own held-out and training KL of each found prompt come along as ``kl_<name>_on_source`` and
``kl_train_<name>_on_source``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness import seeding
from harness.errors import UsageError
from harness.evaluation import mean_stderr
from harness.report import save_figure
from harness.store import read_json

PAIRS = (("transfer", "random_prompts"), ("random", "random_prompts"), ("transfer", "random"), ("transfer", "init"))


@dataclass
class Candidate:
    """A prompt to score on the other model, and what the source model said of it."""

    name: str
    text: str
    kl_on_source: float | None = None
    kl_train_on_source: float | None = None


@dataclass
class Target:
    """One target prompt p* and the source's prompts for it (several per name when the source ran seeds)."""

    prompt: str
    doc_len: int
    candidates: list[Candidate] = field(default_factory=list)


def suite_targets(folder: Path) -> list[Target]:
    """The targets of a propane_suite folder: every found prompt (per arm and seed) and its start."""
    import json

    import yaml

    config = yaml.safe_load((folder / "config.yaml").read_text())
    args = config.get("task_args") or {}
    doc_len, length, first = int(args.get("doc_len") or 8), int(args.get("prompt_len") or 10), first_label(args)
    targets: dict[str, Target] = {}
    for line in (folder / "samples.jsonl").read_text().splitlines():
        sample = json.loads(line)
        target = targets.setdefault(sample["target_prompt"], Target(sample["target_prompt"], doc_len))
        label = sample["id"].rsplit("/", 1)[-1]
        name = "transfer" if label == first else label
        target.candidates.append(
            Candidate(name, sample["best_prompt"], sample["kl_heldout_best"], sample.get("kl_train_best"))
        )
        if name == "transfer":  # its start, once per seed: as recorded, or the suite's "! " x prompt_len
            start = sample.get("init_prompt", " ".join(["!"] * length))
            target.candidates.append(Candidate("init", start, sample["kl_heldout_initial"]))
    return list(targets.values())


def first_label(args: dict) -> str:
    """The label of a suite's first arm (its samples' last id part), e.g. ``propane``."""
    arms = str(args.get("arms") or "propane,random")
    method, _, init = arms.split(",")[0].strip().partition("@")
    return method if init in ("", "bang") else f"{method}_from_{init}"


def run_targets(data: dict) -> list[Target]:
    """The one target of a PROPANE run's best_prompt.json (one record per method)."""
    records = data.get("methods", [data])
    if not records[0].get("target_prompt"):
        return []
    target = Target(records[0]["target_prompt"], int(records[0].get("doc_len") or 32))
    for index, record in enumerate(records):
        name = "transfer" if index == 0 else record["method"]
        target.candidates.append(Candidate(name, record["text"], record.get("kl_heldout")))
    target.candidates.append(Candidate("init", records[0]["init"], records[0].get("kl_heldout_initial")))
    return [target]


class TransferTask:
    """Scores the prompts of a PROPANE run or suite (``source``: run id or folder) on the run's model."""

    name = "propane_transfer"
    version = "2"  # 2: random-prompt baseline; suites as sources
    primary_metric = "kl_transfer"
    variant_args = ("source",)  # prompts from different runs are different leaderboard columns

    def __init__(
        self,
        source: str | None = None,
        n_docs: int = 32,
        doc_len: int | None = None,
        n_random: int = 4,
        n_prompts: int = 0,
        chat: bool | None = None,
        max_batch_tokens: int = 8192,
        threads: int | None = None,
        workers: int = 1,
    ):
        if not source:
            raise UsageError("propane_transfer needs --task-args source=RUN_ID (a harness optimize run or a suite)")
        if n_docs < 2 or (doc_len is not None and doc_len < 1):
            raise UsageError("propane_transfer: n_docs must be >= 2 and doc_len >= 1")
        if n_random < 0:
            raise UsageError(f"n_random={n_random}: give how many random prompts to score (0: none)")
        if n_prompts < 0 or workers < 1 or (threads is not None and threads < 1):
            raise UsageError(
                f"n_prompts={n_prompts}, workers={workers}, threads={threads}: give n_prompts >= 0 (0: every target "
                "of a suite) and positive workers and threads"
            )
        self.source, self.n_docs, self.doc_len, self.n_random = str(source), n_docs, doc_len, n_random
        self.chat, self.max_batch_tokens, self.n_prompts = chat, max_batch_tokens, n_prompts
        self.threads, self.workers = threads, workers
        self.cores = (threads or 1) * workers  # what a sweep reserves for one run

    def targets(self, out: Path, seed: int = 0) -> tuple[list[Target], bool]:
        """The source's targets (``{seed}`` in ``source`` read as ``seed``), and whether it is a suite (several
        targets, paired by prompt)."""
        source = self.source.replace("{seed}", str(seed))
        folder = Path(source)
        if not folder.is_dir():
            from harness.store import Index

            if not (Path(out) / "runs.db").exists():
                raise UsageError(f"source={source}: no runs in {out}; pass the --out of the optimize run")
            folder = Path(Index(out).get(source)["dir"])
        if (folder / "best_prompt.json").exists():
            targets = run_targets(read_json(folder / "best_prompt.json", "re-run the run that wrote it"))
            if not targets:
                raise UsageError(f"source={source} matched documents, not a target prompt; nothing to transfer")
            return targets, False
        if (folder / "samples.jsonl").exists() and "propane_suite" in (folder / "config.yaml").read_text():
            targets = suite_targets(folder)
            return targets[: self.n_prompts or len(targets)], True
        raise UsageError(
            f"source={source}: {folder} has neither best_prompt.json nor a propane_suite's samples.jsonl; give "
            "a finished harness optimize (propane) run or propane_suite run"
        )

    def run(self, ctx) -> dict[str, float]:
        targets, suite = self.targets(ctx.run.out, ctx.seed)
        ctx.path("samples.jsonl").unlink(missing_ok=True)  # deterministic: a rerun recomputes every document
        ctx.run.update_config(
            source_prompts=[{"target_prompt": t.prompt, **{c.name: c.text for c in t.candidates}} for t in targets]
        )
        chat = bool(ctx.model_args.get("chat", False)) if self.chat is None else self.chat
        jobs = [(self, chat, index, target) for index, target in enumerate(targets)]
        scores = ctx.map(score_job, jobs, self.workers)  # in target order, whichever process scored each
        if not suite:
            return self.one_target(ctx, targets[0], scores[0])
        return self.over_targets(ctx, targets, scores)

    def score(self, box, seed: int, index: int, target: Target) -> dict[str, dict]:
        """Per candidate name: per-document KL and agreement on the other model (means over same-named prompts)."""
        import torch
        from harness.plugins.propane.objective import Objective

        template = box.template()
        ids = box.encode(target.prompt)
        doc_len = self.doc_len or target.doc_len
        context = template.prefix + ids + template.suffix
        generator = seeding.generator(seed, "propane-transfer-documents", *([index] if index else []))
        docs = box.sample(context, self.n_docs, doc_len, generator)
        objective = Objective(box, template, docs, torch.ones_like(docs, dtype=torch.bool), self.max_batch_tokens)
        target_nll, target_argmax = objective.doc_nll_and_argmax(torch.tensor(ids))
        prompts = [(c.name, box.encode(c.text) or [box.filler_id()]) for c in target.candidates]
        allowed = box.allowed_tokens().nonzero()[:, 0]
        length = len(prompts[0][1])
        draws = seeding.generator(seed, "propane-transfer-random", index)
        for _ in range(self.n_random):
            prompts.append(
                ("random_prompts", allowed[torch.randint(len(allowed), (length,), generator=draws)].tolist())
            )
        found: dict[str, dict] = {}
        for name, prompt in prompts:
            nll, argmax = objective.doc_nll_and_argmax(torch.tensor(prompt))
            entry = found.setdefault(name, {"kl": [], "agreement": [], "texts": []})
            entry["kl"].append((nll - target_nll).tolist())
            entry["agreement"].append((argmax == target_argmax).float().mean(dim=1).tolist())
            entry["texts"].append(box.decode(prompt))
        for entry in found.values():  # per document, the mean over the same-named prompts
            for key in ("kl", "agreement"):
                entry[key] = [sum(column) / len(column) for column in zip(*entry[key])]
        found["_docs"] = {"texts": [box.decode(doc.tolist()) for doc in docs]}
        return found

    def one_target(self, ctx, target: Target, scores: dict) -> dict[str, float]:
        """One source run: means and stderrs over documents; a record per document."""
        metrics = {}
        for name, entry in scores.items():
            if name == "_docs":
                continue
            metrics[f"kl_{name}"], metrics[f"kl_{name}_stderr"] = mean_stderr(entry["kl"])
            metrics[f"agreement_{name}"], metrics[f"agreement_{name}_stderr"] = mean_stderr(entry["agreement"])
        add_source_values(metrics, [target])
        add_closed(metrics)
        ctx.record(
            [
                {"id": f"doc{i}", "text": text, **{f"kl_{n}": e["kl"][i] for n, e in scores.items() if n != "_docs"}}
                for i, text in enumerate(scores["_docs"]["texts"])
            ]
        )
        return metrics

    def over_targets(self, ctx, targets: list[Target], scores: list[dict]) -> dict[str, float]:
        """A suite: per target prompt, means over documents; metrics over prompts, paired by prompt."""
        from harness.plugins.propane.suite import sign_test

        names = [n for n in scores[0] if n != "_docs"]
        per_target = {n: [sum(s[n]["kl"]) / len(s[n]["kl"]) for s in scores] for n in names}
        metrics = {"prompts": len(targets)}
        for name in names:
            metrics[f"kl_{name}"], metrics[f"kl_{name}_stderr"] = mean_stderr(per_target[name])
            agreement = [sum(s[name]["agreement"]) / len(s[name]["agreement"]) for s in scores]
            metrics[f"agreement_{name}"], metrics[f"agreement_{name}_stderr"] = mean_stderr(agreement)
        for a, b in PAIRS:
            if a in per_target and b in per_target:
                diff = [x - y for x, y in zip(per_target[a], per_target[b])]
                metrics[f"diff_{a}_{b}"], metrics[f"diff_{a}_{b}_stderr"] = mean_stderr(diff)
                wins, losses = sum(d < 0 for d in diff), sum(d > 0 for d in diff)
                metrics.update({f"wins_{a}_{b}": wins, f"losses_{a}_{b}": losses})
                metrics[f"sign_p_{a}_{b}"] = sign_test(wins, losses)
        add_source_values(metrics, targets)
        add_closed(metrics)
        ctx.record(
            [
                {
                    "id": f"prompt{i}",
                    "target_prompt": target.prompt,
                    **{f"kl_{n}": per_target[n][i] for n in names},
                    **{f"text_{n}": scores[i][n]["texts"] for n in names},
                }
                for i, target in enumerate(targets)
            ]
        )
        plot_transfer(ctx.path("transfer_kl.png"), targets, per_target)
        return metrics


_BOXES: dict = {}  # a worker process loads the model once, whatever number of targets it scores


def score_job(ctx, job: tuple) -> dict[str, dict]:
    """One target's scores (picklable, so it may run in a worker process)."""
    from harness.plugins.propane.whitebox import WhiteBox

    task, chat, index, target = job
    if (ctx.model, chat) not in _BOXES:
        _BOXES[(ctx.model, chat)] = WhiteBox(ctx.load_model(), chat=chat)
    return task.score(_BOXES[(ctx.model, chat)], ctx.seed, index, target)


def add_source_values(metrics: dict, targets: list[Target]) -> None:
    """The source model's own held-out and training KL per name: means over targets (and seeds)."""
    for key, attribute in (("kl_{}_on_source", "kl_on_source"), ("kl_train_{}_on_source", "kl_train_on_source")):
        names = {c.name for t in targets for c in t.candidates if getattr(c, attribute) is not None}
        for name in sorted(names):
            per_target = []
            for target in targets:
                values = [getattr(c, attribute) for c in target.candidates if c.name == name]
                per_target.append(sum(values) / len(values))
            metrics[key.format(name)] = sum(per_target) / len(per_target)
            if len(per_target) > 1:
                metrics[key.format(name) + "_stderr"] = mean_stderr(per_target)[1]


def add_closed(metrics: dict) -> None:
    """``closed_<name>``: 1 - KL(name) / KL(random prompts), the share of the way from random prompts to p*."""
    baseline = metrics.get("kl_random_prompts")
    if not baseline:
        return
    for name in ("transfer", "random", "init"):
        if f"kl_{name}" in metrics:
            metrics[f"closed_{name}"] = 1.0 - metrics[f"kl_{name}"] / baseline


def plot_transfer(path, targets: list[Target], per_target: dict[str, list[float]]) -> None:
    """Per target prompt, the KL on the other model of each kind of prompt (the original scores 0)."""
    from harness.report import figure

    labels = {
        "random_prompts": ("random prompts", "0.75"),
        "init": ("start ('! ' x L)", "0.55"),
        "random": ("random search's prompt", "tab:orange"),
        "transfer": ("PROPANE's prompt", "tab:blue"),
    }
    shown = [n for n in labels if n in per_target]
    plt = figure()
    fig, ax = plt.subplots(figsize=(10, 4.2))
    xs = list(range(len(targets)))
    width = 0.8 / len(shown)
    for k, name in enumerate(shown):
        offset = [x + (k - (len(shown) - 1) / 2) * width for x in xs]
        ax.bar(offset, per_target[name], width, label=labels[name][0], color=labels[name][1])
    ax.set_xticks(xs, [f"p{i}" for i in xs])
    ax.set(xlabel="target prompt", ylabel="KL per document on the other model (nats)")
    ax.set_title("prompts found on the source model, scored on another (the original prompt: 0)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    save_figure(fig, path)
