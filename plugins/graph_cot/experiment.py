"""Experiment mode: train one model per CoT strategy, then sweep sequential budgets B x parallel samples N.

Choices not fixed by the paper (the preset must finish in minutes on a shared 2-core CPU):
- Model: the harness Transformer, smaller than the reference (hidden 128, 4 layers): ``d_model=64,
  n_layer=3, n_head=4`` by default (the depth presets need larger ones: below), AdamW lr 3e-3, wd 0.05, cosine with
  10% warmup as in the reference.
- Positions: learned by default, not the reference's rotary. Following an edge needs the edge's other
  endpoint, and in ``u v u v ...`` that is the previous or the next token depending on the parity of the
  position, which rotary attention cannot see. Measured on Bridge(1), dfs, 600 steps of batch 32: loss 1.90
  learned vs 2.56 rotary (rotary had not even learned to copy the start). ``positions=rotary`` stays available.
  Fixed sinusoids (``positions=sinusoidal``, which carry parity exactly) did not help either: Bridge(1), dfs,
  1000 steps, seed 0: loss 2.31 against 1.44 learned.
- Data: fresh problems every step (seeded by run seed, strategy and step), not a fixed training set.
- Threads and processes: torch runs on one intra-op thread unless ``threads`` says otherwise (on a shared
  2-core machine two threads made a step up to 25x slower), and the strategies train side by side in
  ``workers`` processes (one per core): the tiny model cannot use a second core within one step.
- Attention: the relational plugin's identity-augmented attention (``attention=identity``, arXiv 2310.09753)
  by default; ``attention=sdpa`` is the plain one. Following an edge means finding the earlier positions that
  hold the current node and reading their neighbour: matching by token identity, which a plain head must
  first learn as W_Q W_K^T ~ I. At CPU sizes it did not: with sdpa, 2500-6000 steps in many configurations
  (d_model 64-128, 1-4 heads, 2-3 layers, batch 32-64, lr 1e-3-3e-3, rotary or learned positions, an edge
  separator token) stayed on a plateau where the predicted next node is an unvisited neighbour 17% of the
  time (chance ~10%). With identity attention the same model (path, Bridge(1)) reaches 98% by step 1500
  and the whole preset trains both strategies in about four minutes. Both strategies get the same model, so
  the comparison the paper makes (CoT strategy, not architecture) is unchanged. The paper's blocks tuned the way
  the flagship was (escape study, docs/results/graph_cot/reference_escape/; 8000-step schedule): a 2000-step walk
  warm-up was the only knob that helped (plateau ended at 2 of 3 tuning seeds, 1 of 3 with 500 steps; learned
  positions, lr 1e-3 and 1e-2 at none; the paper's 128 x 4 at neither of 2 seeds in 6000 steps), and at seeds
  10-12 it ended no dfs plateau (reference_tuned_seeds/).
- The plateau and the walk warm-up (``walk_warmup``; the flagship preset uses 500 steps). The dfs loss falls to ~1.6
  within 300 steps and sits there until the model learns the edge lookup; the escape study
  (:mod:`harness.plugins.graph_cot.escape`, docs/results/graph_cot/escape/) measured the first step with loss < 1.0
  over 10 seeds of the old flagship: median 1400, quartiles 1319-1556, one seed never within 2500 steps; when it
  breaks decides what the rest of the budget learns, and float differences between CPUs move it (the same seed gave
  dfs evidence 0.57 on one machine and 0.91 on another). A dfs chain is a poor teacher of the lookup: after a dead
  end its next node is a neighbour of an earlier node, not of the last one. A random walk's every step is a
  neighbour of the step before, so both models first train on walks that hit the target (``walk-L``, L the
  strategy's longest chain), then on their own chains: at the same 4 seeds the plateau ended 519 steps earlier on
  average (each seed earlier), while doubling the learning rate (+381, one seed never escaped) and a positive
  identity-attention logit at init (-38) did not help. Both strategies get the same warm-up, so the comparison is
  still between the CoT strategies.
- Depth: the bare preset uses Bridge(1), where this model learns in minutes. Bridge(2) takes several
  thousand steps more; ``curriculum=true`` (each step's batch at a depth drawn uniformly from 1..depth, so a
  batch is padded to its own depth, not the deepest: 1.5x fewer tokens a step at depth 3 than mixing depths
  within a batch) lets the lookup learned on small graphs carry over and is what the deeper presets use.
  ``eval_depths`` scores the models trained up to ``depth`` at every smaller depth too: one training per
  strategy gives the curve against depth (tasks/graph_cot_depth.yaml), where a model per depth would cost
  three trainings.
- What depth 3 takes: model width and depth, more than steps. On one GPU (runs and table in
  docs/results/graph_cot/gpu_d3_search/, dfs only, curriculum, batch 32 unless said), dfs evidence at depth 3 after
  12000 steps: 0.03 at 64 x 3 layers (loss 0.36; 20000 steps of another run were still at loss ~0.5; lr 1e-3 and
  batch 64 did not rescue it: 0.04, 0.12), 0.21 at 64 x 4, 0.87 at 128 x 4 (the paper's size); 0.64 for the paper's
  Mistral-style model (sdpa, rotary, SwiGLU, RMSNorm; batch 64). In budgets a 2-core CPU affords (about 50 min of
  training at each model's speed): 96 x 4 reached 0.71 in 7800 steps, 96 x 3 0.24 in 9500, 128 x 3 0.02 in 7500, and
  128 x 4 had not left its first plateau after 5000 (the plateau lasts ~3000-4500 steps at every size). So the CPU
  preset ``graph_cot_depth`` uses 96 x 4 for 7800 steps and ``graph_cot_depth_gpu`` 128 x 4 for 12000. Run on the
  CPU (53 min), that preset's dfs model left its plateau at step ~4600 instead of ~2950 and ended with evidence 0.92 /
  0.24 / 0.01 at depths 1 / 2 / 3 (docs/results/graph_cot/depth): when the plateau breaks decides what the rest of the
  budget can learn, and 53 CPU-minutes do not make depth 3 reliable. Earlier CPU
  attempts with 64 x 3 (a 12000-step curriculum with mixed-depth batches; 8000 steps of one-depth batches) left dfs
  without valid chains at depth 3, as the search predicts. Not in 30 CPU-minutes either (issue 25; records in
  docs/results/graph_cot/depth_cpu): 30 minutes hold ~4400 steps of 96 x 4, fewer than the 5225 steps the GPU run
  trained after its plateau to reach 0.71, and with the walk warm-up under a 4000-step schedule the plateau still
  held at step 2500 at both seeds tried (escape configuration ``depth_walk500``).
- Budget B counts CoT node tokens. Evidence at budget B checks the first B nodes. The decision at budget B
  is the model's own when its CoT ended within B nodes; otherwise the model is forced to answer
  (``decision:`` appended after the B-th node, one token sampled): budget forcing.
- Sampling: temperature 1 everywhere, N samples per problem, nested (the first N of the largest draw),
  majority vote with random tie-break for decisions and best-of-N (any valid) for evidence. The headline
  ``evidence_accuracy`` and ``decision_accuracy`` are the N=1 cell at the largest budget. Sampled chains are read
  through a :class:`harness.models.KVCache` (each step reads one new token, not the prefix again): at depth 3 on one
  CPU core, 20 problems x 16 chains of a 128 x 4 model took 34 s against 266 s without it (evidence 0.80 both).
- Cost: ``cot_tokens@B=b`` is the mean number of CoT tokens one sample writes within budget b; N samples cost
  N times that. ``compute_matched.png`` puts both scalings on that axis.
"""

from __future__ import annotations

import functools
import random
import time

from harness.plugins.graph_cot.baselines import POLICIES, best_of_n, evidence_closed_form, majority_accuracy
from harness.plugins.graph_cot.graphs import KEYWORDS, Problem, completion_tokens, make_problem, node_count
from harness.plugins.graph_cot.scoring import evidence_ok, majority, parse_tokens
from harness.plugins.graph_cot.strategies import chain_of_thought

from harness import seeding
from harness.evaluation import mean_stderr
from harness.store import read_intermediate, set_aside, write_json_atomic

LADDER = (4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)


def longest_cot(strategy: str, depth: int) -> int:
    n = node_count(depth)
    if strategy == "optimal":
        return 3 * depth + 1
    if strategy == "path":
        return 5 * depth + 1
    if strategy == "dfs":
        return n
    if strategy == "dfs-bt":
        return 2 * n
    return max(int(strategy[5:]), 3 * depth) + 1  # walk-L


def budget_ladder(task, depth: int | None = None) -> list[int]:
    """The budgets swept at ``depth`` (default: the training depth): the given ones, or the ladder up to the first
    rung that fits every trained CoT."""
    if task.budget_grid:
        return task.budget_grid
    longest = max(longest_cot(s, depth or task.depth) for s in task.strategies)
    rungs = [b for b in LADDER if b < longest]
    return rungs + [next((b for b in LADDER if b >= longest), longest)]


def sample_counts(samples: int) -> list[int]:
    counts, n = [], 1
    while n < samples:
        counts.append(n)
        n *= 2
    return counts + [samples]


def make_tokenizer(pool: int):
    from harness.models import WordTokenizer

    return WordTokenizer([str(i) for i in range(pool)] + list(KEYWORDS))


def training_sequence(problem: Problem, cot: list[str]) -> tuple[list[str], int]:
    """Tokens of one training sequence and the index of ``/`` (loss only on what follows it)."""
    tokens = ["<bos>", *problem.prompt_tokens(), *completion_tokens(cot, problem.target), "<eos>"]
    return tokens, len(problem.prompt_tokens())


def warmup_walk(strategy: str, depth: int) -> str:
    """The warm-up's chains: random walks that hit the target within the strategy's longest chain. Every step of
    a walk goes to a neighbour of the node before it, the edge lookup every strategy needs; in a dfs chain a step
    after a dead end does not, which is why dfs sits longer on its plateau than path (escape study)."""
    return f"walk-{max(longest_cot(strategy, depth) - 1, 3 * depth)}"


def make_batches(task, tokenizer, strategy: str, seed: int):
    """``batches(step, generator)`` for the Trainer: right-padded sequences, loss mask after ``/``."""
    import torch

    o = task.options

    def batches(step: int, generator) -> dict:
        rng = seeding.rng(seed, "graph_cot-train", strategy, step)
        depth = rng.randint(1, task.depth) if o.curriculum else task.depth  # one depth a batch: no padding
        chains = warmup_walk(strategy, depth) if step <= o.walk_warmup else strategy
        rows = []
        for _ in range(o.batch_size):
            problem = make_problem(depth, rng, task.pool)
            tokens, sep = training_sequence(problem, chain_of_thought(problem, chains, rng))
            rows.append((tokenizer.encode(" ".join(tokens)), sep))
        width = max(len(ids) for ids, _ in rows) - 1
        input_ids = torch.full((len(rows), width), tokenizer.pad_id, dtype=torch.long)
        targets = torch.full((len(rows), width), -100, dtype=torch.long)
        loss_mask = torch.zeros((len(rows), width))
        for i, (ids, sep) in enumerate(rows):
            input_ids[i, : len(ids) - 1] = torch.tensor(ids[:-1])
            targets[i, : len(ids) - 1] = torch.tensor(ids[1:])
            loss_mask[i, sep : len(ids) - 1] = 1.0  # predictions of the tokens after "/"
        return {"input_ids": input_ids, "targets": targets, "loss_mask": loss_mask}

    return batches


def build_strategy_model(task, strategy: str, seed: int):
    """A fresh model for ``strategy`` (seeded init) and its tokenizer; positions sized for the longest sequence."""
    from harness.models import ModelConfig, build_model
    from harness.training import seed_everything

    tokenizer = make_tokenizer(task.pool)
    o = task.options
    longest = max(longest_cot(strategy, task.depth), budget_ladder(task)[-1] + 3)  # the evaluation's too
    seq_len = 2 + len(make_problem(task.depth, random.Random(0), task.pool).prompt_tokens()) + longest + 4
    seed_everything(seed)
    config = ModelConfig(
        vocab_size=tokenizer.vocab_size,
        n_layer=o.n_layer,
        n_head=o.n_head,
        d_model=o.d_model,
        max_seq_len=seq_len + 8,
        positions=o.positions,
        attention=o.attention,
        ffn=o.ffn,
        norm=o.norm,
        init_scale=o.init_scale,
        options={"identity_logit_init": o.identity_init},
    )
    return build_model(config), tokenizer


def train_config(task, seed: int):
    """The trainer's settings for ``task`` (AdamW, warmup then cosine, clipped gradients)."""
    from harness.training import TrainConfig

    o = task.options
    return TrainConfig(
        steps=o.steps,
        batch_size=o.batch_size,
        lr=o.lr,
        weight_decay=o.weight_decay,
        warmup=o.warmup,
        betas=(0.9, o.adam_beta2),
        schedule="cosine",
        grad_clip=1.0,
        seed=seed,
        checkpoint_every=200,
        log_every=25,
        device=task.device,
    )


def trained_model(task, ctx, strategy: str):
    """The strategy's model: loaded from ``<run>/<strategy>`` if finished there, else trained."""
    from harness.models import load_checkpoint_dir, save_checkpoint_dir

    final = ctx.path(strategy)
    if (final / "config.json").exists():
        model, tokenizer, extra = load_checkpoint_dir(final)
        return model.eval(), tokenizer, extra
    model, tokenizer = build_strategy_model(task, strategy, ctx.seed)
    extra = {"task": "graph_cot", "strategy": strategy, "depth": task.depth, "pool": task.pool, "add_bos": True}
    began = time.perf_counter()
    trainer = ctx.trainer(
        model,
        train_config(task, ctx.seed),
        make_batches(task, tokenizer, strategy, ctx.seed),
        name=f"train-{strategy}",
        prefix=f"{strategy}/",
        tokenizer=tokenizer,
        model_extra=extra,
    )
    result = trainer.fit()
    extra.update(train_loss=result["train_loss"], train_time_s=time.perf_counter() - began)
    save_checkpoint_dir(final, model.cpu(), tokenizer, extra)
    return model.eval(), tokenizer, extra


def evaluation_file(ctx, strategy: str, depth: int):
    return ctx.path(strategy) / f"evaluation-d{depth}.json"


def evaluated_model(task, ctx, strategy: str) -> tuple[dict, dict[int, dict]]:
    """The strategy's training record and its evaluation over the grid at every evaluation depth, read from
    ``<run>/<strategy>`` when an earlier (or parallel) pass finished them."""
    model, tokenizer, extra = trained_model(task, ctx, strategy)
    model.to(task.device)
    results = {}
    for depth in task.eval_depths:
        cache = evaluation_file(ctx, strategy, depth)
        result = read_evaluation(cache)
        if result is None:  # not evaluated yet, or a damaged record set aside: evaluate (minutes, not training)
            began = time.perf_counter()
            result = evaluate_strategy(task, ctx, model, tokenizer, depth)
            result["eval_time_s"] = time.perf_counter() - began
            write_json_atomic(cache, result)
        results[depth] = result
    return extra, results


def read_evaluation(cache) -> dict | None:
    """A finished evaluation record, or None to evaluate again: absent, or damaged (cut short, not JSON, no grid),
    in which case it is set aside with one warning line instead of failing every resume."""
    result = read_intermediate(cache)
    if result is None:
        return None
    try:
        result["grid"] = {int(b): cell for b, cell in result["grid"].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        set_aside(cache, "no evaluation grid in it")
        return None
    return result


def train_in_process(task, ctx, strategy: str) -> None:
    """One strategy in a worker process of its own (:meth:`RunContext.map`), on ``task.threads`` threads (the run
    starts its workers on them)."""
    evaluated_model(task, ctx, strategy)


def train_strategies(task, ctx) -> None:
    """Train and evaluate the unfinished strategies side by side, one process each (up to ``task.workers``).

    Each model is small enough that one core is all a step can use; two processes on two cores halve the
    wall time. The processes share the run's context, so their series, probes and hooks land in this run.
    """
    todo = [s for s in task.strategies if not all(evaluation_file(ctx, s, d).exists() for d in task.eval_depths)]
    if task.workers >= 2 and len(todo) >= 2:
        ctx.map(functools.partial(train_in_process, task), todo, task.workers)


def eval_problems(task, seed: int, limit: int | None, depth: int) -> list[Problem]:
    """The same problems as LLM mode's examples at ``depth`` (same seed, same order), named from the training
    pool."""
    rng = seeding.rng(seed, "graph_cot-eval", depth)
    count = task.examples if limit is None else min(task.examples, limit)
    return [make_problem(depth, rng, task.pool) for _ in range(count)]


def generate(model, rows, max_new: int, stop_ids: set[int], decision_id: int, generator, batch: int):
    """Sample (temperature 1, harness.sampling) up to ``max_new`` tokens after each row (rows share one length: no
    padding); ``generator``: one stream for all rows, drawn in row order."""
    import torch

    from harness.models import KVCache
    from harness.sampling import sample

    out, device = [], next(model.parameters()).device
    for lo in range(0, len(rows), batch):
        x = torch.tensor(rows[lo : lo + batch])
        done = torch.zeros(len(x), dtype=torch.bool)
        new = []
        cache = KVCache(len(model.blocks)) if model.supports_cache else None  # else the prefix is read every step
        for _ in range(max_new):
            unread = x if cache is None else x[:, cache.length :]
            logits = model(unread.to(device), cache=cache)[:, -1].float().cpu()  # (R, V); drawn on the CPU: one stream
            token = sample(logits, generator)[:, None]  # (R, 1)
            previous = x[:, -1]
            x = torch.cat([x, token], dim=1)
            new.append(token[:, 0])
            done |= (previous == decision_id) | torch.isin(token[:, 0], torch.tensor(sorted(stop_ids)))
            if bool(done.all()):
                break
        out += torch.stack(new, dim=1).tolist()
    return out


def evaluate_strategy(task, ctx, model, tokenizer, depth: int) -> dict:
    """Per budget of the ladder at ``depth``: each problem's N decisions and evidence verdicts."""
    import torch

    budgets = budget_ladder(task, depth)
    problems = eval_problems(task, ctx.seed, ctx.limit, depth)
    n = task.samples
    stream = ("graph_cot-sample",) if depth == task.depth else ("graph_cot-sample", depth)
    generator = seeding.generator(ctx.seed, *stream)
    prompts = [tokenizer.encode(" ".join(["<bos>", *p.prompt_tokens(), "work:"])) for p in problems]
    rows = [ids for ids in prompts for _ in range(n)]
    decision_id = tokenizer.index["decision:"]
    room = model.config.max_seq_len - len(prompts[0]) - 1  # keeps "decision:" after the longest CoT in range
    with torch.no_grad():
        new = generate(
            model, rows, min(budgets[-1] + 3, room), {tokenizer.eos_id}, decision_id, generator, task.eval_batch
        )
        parsed = [parse_tokens(["work:", *tokenizer.decode(ids).split()]) for ids in new]
        grid = {}
        for budget in budgets:
            forced = [i for i, (cot, _, finished) in enumerate(parsed) if not finished or len(cot) > budget]
            prefixes = [
                rows[i] + [tokenizer.index[c] for c in parsed[i][0][:budget] if c in tokenizer.index] + [decision_id]
                for i in forced
            ]
            forced_decisions = dict(zip(forced, force_decisions(model, tokenizer, prefixes, generator, task)))
            decisions = [forced_decisions.get(i, parsed[i][1]) for i in range(len(rows))]
            grid[budget] = {
                "decisions": [decisions[k * n : (k + 1) * n] for k in range(len(problems))],
                "evidence": [
                    [evidence_ok(p, parsed[k * n + j][0][:budget]) for j in range(n)] for k, p in enumerate(problems)
                ],
            }
    lengths = [len(parsed[k * n][0]) for k in range(len(problems))]
    return {
        "grid": grid,
        "targets": [p.target for p in problems],
        "cot_length": sum(lengths) / len(lengths),
        "lengths": [len(cot) for cot, _, _ in parsed],
        "example": {"prompt": problems[0].prompt(), "completion": tokenizer.decode(new[0])},
    }


def force_decisions(model, tokenizer, prefixes: list[list[int]], generator, task) -> list[str]:
    """One sampled token (temperature 1, harness.sampling) after each ``... decision:`` prefix, grouped by length
    (no padding needed)."""
    import torch

    from harness.sampling import sample

    by_length: dict[int, list[int]] = {}
    for i, ids in enumerate(prefixes):
        by_length.setdefault(len(ids), []).append(i)
    out: list[str] = [""] * len(prefixes)
    for indices in by_length.values():
        for lo in range(0, len(indices), task.eval_batch):
            chunk = indices[lo : lo + task.eval_batch]
            x = torch.tensor([prefixes[i] for i in chunk], device=next(model.parameters()).device)
            logits = model(x)[:, -1].float().cpu()
            tokens = sample(logits, generator).tolist()
            for i, token in zip(chunk, tokens):
                out[i] = tokenizer.tokens[token]
    return out


def scores(result: dict, budget: int, n: int, rng) -> tuple[list[float], list[float]]:
    """Per problem, from its first ``n`` samples at ``budget``: best-of-n evidence and the majority vote's
    correctness (ties broken by ``rng``)."""
    cell = result["grid"][budget]
    best = [float(any(e[:n])) for e in cell["evidence"]]
    votes = [float(majority(d[:n], rng) == t) for d, t in zip(cell["decisions"], result["targets"])]
    return best, votes


def grid_metrics(result: dict, prefix: str, budgets: list[int], counts: list[int], seed: int) -> dict:
    """Majority-vote decision and best-of-N evidence accuracy (with stderr) per (B, N), plus headlines."""
    metrics = {}
    for budget in budgets:
        for n in counts:
            best, votes = scores(result, budget, n, seeding.rng(seed, "graph_cot-vote", budget, n))
            for name, values in (("evidence_accuracy", best), ("decision_accuracy", votes)):
                mean, stderr = mean_stderr(values)
                metrics[f"{prefix}{name}@B={budget},N={n}"] = mean
                metrics[f"{prefix}{name}@B={budget},N={n}_stderr"] = stderr
    full = budgets[-1]
    for name in ("evidence_accuracy", "decision_accuracy"):
        metrics[f"{prefix}{name}"] = metrics[f"{prefix}{name}@B={full},N=1"]
        metrics[f"{prefix}{name}_stderr"] = metrics[f"{prefix}{name}@B={full},N=1_stderr"]
    metrics[f"{prefix}cot_length"] = result["cot_length"]
    for budget in budgets:  # CoT tokens written per sample within the budget: the cost axis of both scalings
        used = [min(length, budget) for length in result.get("lengths", [])]
        if used:
            metrics[f"{prefix}cot_tokens@B={budget}"] = sum(used) / len(used)
    return metrics


def run_experiment(task, ctx) -> dict[str, float]:
    budgets, counts = budget_ladder(task), sample_counts(task.samples)
    metrics: dict[str, float] = {}
    train_strategies(task, ctx)
    results = {}
    for strategy in task.strategies:
        extra, results[strategy] = evaluated_model(task, ctx, strategy)
        for depth, result in results[strategy].items():
            prefix = task.metric_prefix(strategy, depth)
            metrics.update(grid_metrics(result, prefix, budget_ladder(task, depth), counts, ctx.seed))
        metrics[f"{task.metric_prefix(strategy)}train_loss"] = float(extra.get("train_loss", float("nan")))
        ctx.record(
            [
                {
                    "id": f"{strategy}@d={depth}" if len(task.eval_depths) > 1 else strategy,
                    "strategy": strategy,
                    "depth": depth,
                    **result["example"],
                    "train_time_s": extra.get("train_time_s"),
                    "eval_time_s": result.get("eval_time_s"),
                }
                for depth, result in results[strategy].items()
            ]
        )
    for name in ("evidence_accuracy", "decision_accuracy"):  # the headline: the first strategy's, unprefixed
        for suffix in ("", "_stderr"):
            metrics.setdefault(name + suffix, metrics[task.metric_prefix(None, task.depth) + name + suffix])
    for policy in POLICIES:
        metrics[f"baseline/{policy}/evidence_accuracy"] = evidence_closed_form(policy, task.depth)
    metrics.update(matching_cost(task, metrics, budgets, counts))
    if len(task.eval_depths) > 1:
        metrics.update(depth_metrics(task, results, metrics, ctx.seed))
        write_depth_plots(task, ctx, metrics)
    write_plots(task, ctx, metrics, budgets, counts)
    print_summary(task, metrics, budgets, counts)
    return metrics


def depth_metrics(task, results: dict, metrics: dict, seed: int) -> dict[str, float]:
    """Per evaluation depth: every other strategy's N chains at the first strategy's token cost (N = the first
    strategy's CoT tokens / this one's, rounded, 1..samples) with best-of-N evidence and majority decision, and
    the closed forms of both baselines scored like the models (a chain that reaches the target decides right,
    any other decides by a fair coin, so decision = (1 + p) / 2, and majority-N is the binomial vote)."""
    out: dict[str, float] = {}
    lead = task.strategies[0]
    for depth in task.eval_depths:
        full = budget_ladder(task, depth)[-1]
        lead_tokens = metrics[f"{task.metric_prefix(lead, depth)}cot_tokens@B={full}"]
        for strategy in task.strategies[1:]:
            p = task.metric_prefix(strategy, depth)
            n = min(task.samples, max(1, round(lead_tokens / max(metrics[f"{p}cot_tokens@B={full}"], 1e-9))))
            best, votes = scores(results[strategy][depth], full, n, seeding.rng(seed, "graph_cot-matched", depth))
            out[f"{p}matched_n"] = n
            for name, values in (("evidence_accuracy", best), ("decision_accuracy", votes)):
                out[f"{p}{name}@matched"], out[f"{p}{name}@matched_stderr"] = mean_stderr(values)
        for policy in POLICIES:
            chance = evidence_closed_form(policy, depth)
            out[f"baseline/{policy}/d{depth}/evidence_accuracy"] = chance
            out[f"baseline/{policy}/d{depth}/decision_accuracy"] = (1 + chance) / 2
            out[f"baseline/{policy}/d{depth}/decision_accuracy@N={task.samples}"] = majority_accuracy(
                (1 + chance) / 2, task.samples
            )
    return out


def write_depth_plots(task, ctx, metrics: dict) -> None:
    """Evidence (log y: the baselines fall geometrically) and decision accuracy against depth: one chain of each
    strategy, the others' N chains at matched tokens and at N=samples, and the closed-form baselines."""
    from harness.report import plot_lines

    depths = task.eval_depths
    for name in ("evidence", "decision"):
        lines, errors = {}, {}
        for label, keys in depth_series(task, name):
            lines[label] = (depths, [metrics[k] for k in keys])
            if all(f"{k}_stderr" in metrics for k in keys):
                errors[label] = [metrics[f"{k}_stderr"] for k in keys]
        plot_lines(
            ctx.path(f"{name}_vs_depth.png"),
            lines,
            "depth d of Bridge(d)",
            f"{name} accuracy" + (" (log scale)" if name == "evidence" else ""),
            f"{name.capitalize()} accuracy against depth (full budget; models trained up to depth {task.depth})",
            logy=name == "evidence",
            errors=errors,
        )


def depth_series(task, name: str) -> list[tuple[str, list[str]]]:
    """(label, metric key per evaluation depth) of each line of the ``name`` (evidence|decision) depth plot."""
    depths, most, lead = task.eval_depths, task.samples, task.strategies[0]
    vote = "best-of" if name == "evidence" else "majority"

    def at(strategy: str, n: int) -> list[str]:
        return [
            f"{task.metric_prefix(strategy, d)}{name}_accuracy@B={budget_ladder(task, d)[-1]},N={n}" for d in depths
        ]

    series = []
    for strategy in task.strategies:
        series.append((f"{strategy}, one chain", at(strategy, 1)))
        if strategy != lead:
            matched = [f"{task.metric_prefix(strategy, d)}{name}_accuracy@matched" for d in depths]
            series += [
                (f"{strategy}, {vote}-N at {lead}'s tokens", matched),
                (f"{strategy}, {vote}-{most}", at(strategy, most)),
            ]
    series += [(f"{p} (closed form)", [f"baseline/{p}/d{d}/{name}_accuracy" for d in depths]) for p in POLICIES]
    if name == "decision":
        keys = [f"baseline/random-path/d{d}/decision_accuracy@N={most}" for d in depths]
        series.append((f"random-path majority-{most} (closed form)", keys))
    return series


def write_plots(task, ctx, metrics: dict, budgets: list[int], counts: list[int]) -> None:
    from harness.report import plot_heatmap, plot_lines

    full = budgets[-1]
    for strategy in task.strategies:
        p = task.metric_prefix(strategy, task.depth)
        matrix = [[metrics[f"{p}evidence_accuracy@B={b},N={n}"] for n in counts] for b in budgets]
        plot_heatmap(
            ctx.path(f"heatmap_{strategy}.png"),
            matrix,
            budgets,
            counts,
            "parallel samples N (best-of-N)",
            "sequential budget B (CoT tokens)",
            f"{strategy}: evidence accuracy, Bridge({task.depth})",
        )
    parallel, sequential = {}, {}
    for strategy in task.strategies:
        p = task.metric_prefix(strategy, task.depth)
        parallel[f"{strategy} evidence best-of-N"] = (
            counts,
            [metrics[f"{p}evidence_accuracy@B={full},N={n}"] for n in counts],
        )
        parallel[f"{strategy} decision majority"] = (
            counts,
            [metrics[f"{p}decision_accuracy@B={full},N={n}"] for n in counts],
        )
        for name in ("evidence", "decision"):
            sequential[f"{strategy} {name}"] = (budgets, [metrics[f"{p}{name}_accuracy@B={b},N=1"] for b in budgets])
    for policy in POLICIES:
        p1 = evidence_closed_form(policy, task.depth)
        parallel[f"{policy} best-of-N (closed form)"] = (counts, [best_of_n(p1, n) for n in counts])
    plot_lines(
        ctx.path("parallel_scaling.png"),
        parallel,
        "samples N (temperature 1)",
        "accuracy",
        f"Parallel scaling at full budget B={full}, Bridge({task.depth})",
        logx=True,
    )
    plot_lines(
        ctx.path("sequential_scaling.png"),
        sequential,
        "CoT budget B (tokens)",
        "accuracy",
        f"Sequential scaling, one sample, Bridge({task.depth})",
    )
    matched = compute_matched(task, metrics, budgets, counts)
    if matched:
        plot_lines(
            ctx.path("compute_matched.png"),
            matched,
            "CoT tokens written per problem (B x N, mean)",
            "evidence accuracy",
            f"Sequential (N=1, budget B) vs parallel (B={full}, best-of-N), Bridge({task.depth})",
            logx=True,
        )


def compute_matched(task, metrics: dict, budgets: list[int], counts: list[int]) -> dict:
    """Evidence accuracy against the CoT tokens spent per problem: one chain grown by its budget B
    (sequential) or N full-budget chains (parallel), per strategy; empty when token counts are missing."""
    full, series = budgets[-1], {}
    for strategy in task.strategies:
        p = task.metric_prefix(strategy, task.depth)
        if f"{p}cot_tokens@B={full}" not in metrics:
            return {}
        series[f"{strategy} sequential"] = (
            [metrics[f"{p}cot_tokens@B={b}"] for b in budgets],
            [metrics[f"{p}evidence_accuracy@B={b},N=1"] for b in budgets],
        )
        series[f"{strategy} parallel"] = (
            [n * metrics[f"{p}cot_tokens@B={full}"] for n in counts],
            [metrics[f"{p}evidence_accuracy@B={full},N={n}"] for n in counts],
        )
    return series


def matching_cost(task, metrics: dict, budgets: list[int], counts: list[int]) -> dict[str, float]:
    """The paper's compute comparison: how many tokens the other strategies' parallel chains (best-of-N at full
    budget) spend to reach the first strategy's one-chain evidence, as ``<s>/match_n`` (the smallest such N) and
    ``<s>/match_token_ratio`` (their tokens over one lead chain's); ``match_n = 0`` when N up to ``samples`` does
    not reach it."""
    full, lead = budgets[-1], task.strategies[0]
    p0 = task.metric_prefix(lead, task.depth)
    if len(task.strategies) < 2 or f"{p0}cot_tokens@B={full}" not in metrics:
        return {}
    target, lead_tokens = metrics[f"{p0}evidence_accuracy"], metrics[f"{p0}cot_tokens@B={full}"]
    out: dict[str, float] = {}
    for strategy in task.strategies[1:]:
        p = task.metric_prefix(strategy, task.depth)
        reach = [n for n in counts if metrics[f"{p}evidence_accuracy@B={full},N={n}"] >= target]
        out[f"{p}match_n"] = reach[0] if reach else 0
        if reach:
            out[f"{p}match_token_ratio"] = reach[0] * metrics[f"{p}cot_tokens@B={full}"] / max(lead_tokens, 1e-9)
    return out


def print_summary(task, metrics: dict, budgets: list[int], counts: list[int]) -> None:
    from harness.report import render

    full, most = budgets[-1], counts[-1]
    rows = []
    for strategy in task.strategies:
        p = task.metric_prefix(strategy, task.depth)
        rows.append(
            {
                "strategy": strategy,
                "evidence N=1": metrics[f"{p}evidence_accuracy"],
                f"evidence best-of-{most}": metrics[f"{p}evidence_accuracy@B={full},N={most}"],
                "decision N=1": metrics[f"{p}decision_accuracy"],
                f"decision maj-{most}": metrics[f"{p}decision_accuracy@B={full},N={most}"],
                "CoT length": metrics[f"{p}cot_length"],
            }
        )
    for policy in POLICIES:
        p1 = evidence_closed_form(policy, task.depth)
        rows.append(
            {
                "strategy": f"{policy} (closed form)",
                "evidence N=1": p1,
                f"evidence best-of-{most}": best_of_n(p1, most),
                "decision N=1": (1 + p1) / 2,
                f"decision maj-{most}": majority_accuracy((1 + p1) / 2, most),
            }
        )
    columns = list(rows[0])
    print(f"\ngraph_cot, Bridge({task.depth}), full budget B={full}:\n" + render(rows, columns))
    print("\n".join(token_costs(task, metrics, budgets, counts)) + "\n")
    if len(task.eval_depths) > 1:
        rows = depth_rows(task, metrics)
        print("against depth (N at matched tokens):\n" + render(rows, list(rows[0])) + "\n")


def depth_rows(task, metrics: dict) -> list[dict]:
    """One row per evaluation depth: one chain of each strategy, the others' votes at matched tokens, the
    random-path closed form."""
    rows = []
    for depth in task.eval_depths:
        full = budget_ladder(task, depth)[-1]
        row: dict = {"depth": depth}
        for strategy in task.strategies:
            p = task.metric_prefix(strategy, depth)
            row[f"{strategy} evidence"] = metrics[f"{p}evidence_accuracy@B={full},N=1"]
            row[f"{strategy} decision"] = metrics[f"{p}decision_accuracy@B={full},N=1"]
            if f"{p}matched_n" in metrics:
                row[f"{strategy} N"] = metrics[f"{p}matched_n"]
                row[f"{strategy} best-of-N"] = metrics[f"{p}evidence_accuracy@matched"]
                row[f"{strategy} majority-N"] = metrics[f"{p}decision_accuracy@matched"]
        row["random-path evidence"] = metrics[f"baseline/random-path/d{depth}/evidence_accuracy"]
        rows.append(row)
    return rows


def token_costs(task, metrics: dict, budgets: list[int], counts: list[int]) -> list[str]:
    """One line per strategy: what one chain reaches, and how many parallel chains (and tokens) it takes to
    reach the best single-chain evidence accuracy of any strategy."""
    full = budgets[-1]
    best = max(metrics[f"{task.metric_prefix(s, task.depth)}evidence_accuracy"] for s in task.strategies)
    lines = [f"evidence accuracy per CoT tokens spent (target: the best one-chain score, {best:.2f}):"]
    for strategy in task.strategies:
        p = task.metric_prefix(strategy, task.depth)
        tokens = metrics.get(f"{p}cot_tokens@B={full}", metrics[f"{p}cot_length"])
        line = f"  {strategy}: one chain, {tokens:.1f} tokens -> {metrics[f'{p}evidence_accuracy']:.2f}"
        reach = [n for n in counts if metrics[f"{p}evidence_accuracy@B={full},N={n}"] >= best]
        if reach and reach[0] > 1:
            n = reach[0]
            line += (
                f"; {n} parallel chains, {n * tokens:.1f} tokens -> "
                f"{metrics[f'{p}evidence_accuracy@B={full},N={n}']:.2f}"
            )
        elif not reach:
            line += f"; not reached by {counts[-1]} parallel chains"
        lines.append(line)
    return lines
