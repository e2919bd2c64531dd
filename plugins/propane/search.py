"""The searches: PROPANE (gradient-guided token swaps), the random-swap baseline, and the soft-prompt variant.

Choices not fixed by the paper:
- Proposal positions are spread evenly over the prompt (a seeded permutation, repeated), so each step tries every
  position about batch_size / prompt_len times; a proposal never "swaps" a token for itself.
- PROPANE moves to the best proposal every step, as GCG does (it may go uphill, which escapes local minima).
  The random baseline moves only when the best proposal improves the loss: the stronger of the two rules for
  unguided search, so the measured gain from gradients is not inflated. Both score ``batch_size`` proposals per
  step against all training documents, the same budget of loss evaluations.
- The best prompt is the one with the lowest search loss on the training documents (free: every accepted prompt
  was scored); its held-out KL is then an honest estimate. Early stop (``kl_threshold``) reads the training KL of
  the current prompt, every step: the held-out documents only measure, they never steer the search.
- Soft prompts: Adam on the prompt embeddings (full batch over training documents); the projection is the nearest
  allowed token embedding in L2 distance. The prompt a soft run writes (best_prompt.json) is that projection, so
  its ``kl_heldout`` is the projection's; the continuous prompt's KL is reported as ``kl_heldout_soft``. Its
  early stop reads the continuous prompt's training KL (what the optimizer descends).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from harness.plugins.propane.problem import Problem

from harness import seeding
from harness.evaluation import mean_stderr

Logger = Callable[[int, dict], None]


@dataclass
class Trace:
    """What one search did: its per-step records and the best prompt it saw."""

    method: str
    history: list[dict] = field(default_factory=list)
    best_ids: list[int] = field(default_factory=list)
    best_loss: float = float("inf")
    best_step: int = 0
    steps: int = 0
    search_seconds: float = 0.0
    evaluations: int = 0  # proposals whose loss was computed
    stopped_early: bool = False
    extra: dict = field(default_factory=dict)  # method-specific metrics (soft: projection KL)

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.search_seconds if self.search_seconds > 0 else float("nan")


def spread_positions(length: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` positions covering 0..length-1 evenly, in a seeded order."""
    rounds = -(-count // length)
    return torch.cat([torch.randperm(length, generator=generator) for _ in range(rounds)])[:count]


def swap(current: torch.Tensor, positions: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """One proposal per (position, token): the current prompt with that single token replaced. (B, L)"""
    proposals = current.repeat(len(positions), 1)
    proposals[torch.arange(len(positions)), positions] = tokens
    return proposals


class GradientProposer:
    """PROPANE's proposals: for each position, the top-k tokens by the normalised one-hot gradient."""

    method = "propane"
    accept_only_improvement = False

    def __init__(self, problem: Problem):
        self.problem = problem

    def __call__(self, current: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        settings = self.problem.settings
        grad = self.problem.train.objective.token_gradient(current, settings.gamma)  # (L, V)
        grad = grad / grad.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        grad[:, ~self.problem.allowed] = float("inf")
        grad[torch.arange(len(current)), current] = float("inf")
        top = (-grad).topk(min(settings.topk, int(self.problem.allowed.sum()) - 1), dim=1).indices  # (L, k)
        positions = spread_positions(len(current), settings.batch_size, generator)
        choice = torch.randint(top.shape[1], (settings.batch_size,), generator=generator)
        return swap(current, positions, top[positions, choice])


class RandomProposer:
    """The baseline: a uniformly random allowed token at each proposal's position, no gradient."""

    method = "random"
    accept_only_improvement = True

    def __init__(self, problem: Problem):
        self.problem = problem
        self.allowed_ids = problem.allowed.nonzero()[:, 0]

    def __call__(self, current: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        count = self.problem.settings.batch_size
        positions = spread_positions(len(current), count, generator)
        tokens = self.allowed_ids[torch.randint(len(self.allowed_ids), (count,), generator=generator)]
        same = tokens == current[positions]  # never propose the token already there
        tokens[same] = self.allowed_ids[
            (torch.searchsorted(self.allowed_ids, tokens[same]) + 1) % len(self.allowed_ids)
        ]
        return swap(current, positions, tokens)


def _mean(values: torch.Tensor) -> float:
    return float(values.mean())


def swap_search(problem: Problem, proposer, log: Logger) -> Trace:
    """Run single-token-swap search from the initial prompt; log train and held-out KL; keep the best prompt."""
    settings, train = problem.settings, problem.train
    trace = Trace(method=proposer.method)
    generator = seeding.generator(problem.seed, "propane-proposals")
    current = torch.tensor(problem.init_ids)
    loss, nll = train.objective.search_loss(current[None], settings.gamma)
    current_loss, current_nll = float(loss[0]), nll[0]
    trace.best_ids, trace.best_loss = current.tolist(), current_loss
    for step in range(0, settings.steps + 1):
        if step > 0:
            started = time.perf_counter()
            proposals = proposer(current, generator)
            pick, loss, nll = train.objective.best_of(proposals, settings.gamma)
            trace.search_seconds += time.perf_counter() - started
            trace.evaluations += len(proposals)
            trace.steps = step
            if not proposer.accept_only_improvement or loss < current_loss:
                current, current_loss, current_nll = proposals[pick], loss, nll
            if current_loss < trace.best_loss:
                trace.best_ids, trace.best_loss, trace.best_step = current.tolist(), current_loss, step
        record = {
            "method": trace.method,
            "loss": current_loss,
            "kl_train": _mean(train.kl(current_nll)),
            "best_loss": trace.best_loss,
        }
        trace.stopped_early = reached(settings.kl_threshold, record["kl_train"])
        if step % settings.eval_every == 0 or step == settings.steps or trace.stopped_early:
            record["kl_heldout"], record["kl_heldout_stderr"] = problem.heldout_kl(current)
        trace.history.append({"step": step, **record})
        log(step, record)
        if trace.stopped_early:
            break
    return trace


def reached(threshold: float | None, kl_train: float) -> bool:
    """Early stop: the training KL is at or below ``kl_threshold`` (never the held-out KL, which only measures)."""
    return threshold is not None and kl_train <= threshold


def nearest_tokens(problem: Problem, embeds: torch.Tensor) -> torch.Tensor:
    """The allowed token whose embedding is closest (L2) to each soft position: (L,) ids."""
    matrix = problem.box.embedding_matrix.detach().float() * problem.box.embed_scale  # as box.embed gives them
    embeds = embeds.detach().float()
    distance = (matrix * matrix).sum(dim=1)[None] - 2 * embeds @ matrix.T  # (L, V), up to a per-row constant
    distance[:, ~problem.allowed.to(distance.device)] = float("inf")
    return distance.argmin(dim=1).cpu()


def soft_search(problem: Problem, log: Logger, lr: float = 0.01) -> Trace:
    """Adam on the prompt embeddings; held-out KL of the continuous prompt and of its nearest-token projection."""
    settings, train = problem.settings, problem.train
    trace = Trace(method="propane-soft")
    leaf = problem.box.embed(torch.tensor(problem.init_ids)).detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([leaf], lr=lr)
    best = leaf.detach().clone()
    for step in range(0, settings.steps + 1):
        started = time.perf_counter()
        optimizer.zero_grad()
        loss = train.objective.soft_backward(leaf)  # the loss of the embeddings before this update
        if loss < trace.best_loss:
            best, trace.best_loss, trace.best_step = leaf.detach().clone(), loss, step
        if step > 0:
            optimizer.step()
            trace.steps = step
            trace.evaluations += 1
        trace.search_seconds += time.perf_counter() - started
        record = {"method": trace.method, "loss": loss, "kl_train": train_kl_of_loss(train, loss)}
        trace.stopped_early = reached(settings.kl_threshold, record["kl_train"])
        if step % settings.eval_every == 0 or step == settings.steps or trace.stopped_early:
            record["kl_heldout"], record["kl_heldout_stderr"] = problem.heldout_kl(nearest_tokens(problem, leaf))
            record["kl_heldout_soft"], record["kl_heldout_soft_stderr"] = problem.heldout_kl(leaf.detach())
        trace.history.append({"step": step, **record})
        log(step, record)
        if trace.stopped_early:
            break
    trace.best_ids = nearest_tokens(problem, best).tolist()
    trace.extra["best_embeddings"] = best.cpu()
    return trace


def train_kl_of_loss(train, loss: float) -> float:
    """Mean training KL per document from the token-mean NLL ``loss`` (NaN when log P(d|p*) is unknown)."""
    if train.target_nll is None:
        return float("nan")
    return (loss * train.objective.tokens - float(train.target_nll.sum())) / train.objective.n_docs


def summarise(problem: Problem, trace: Trace) -> dict[str, float]:
    """metrics.json values of one search: initial and best held-out KL (with stderr), train KL, speed.

    ``kl_heldout_best`` is always the KL of the token ids the run writes as its best prompt; a soft search adds
    ``kl_heldout_soft_best``, the KL of its continuous prompt (which no text reproduces)."""
    initial, initial_se = problem.heldout_kl(problem.init_ids)
    best, best_se = problem.heldout_kl(trace.best_ids)
    nll = problem.train.objective.doc_nll(torch.tensor([trace.best_ids]))[0]
    soft = trace.extra.get("best_embeddings")
    extra = {}
    if soft is not None:
        extra["kl_heldout_soft_best"], extra["kl_heldout_soft_best_stderr"] = problem.heldout_kl(soft)
    return {
        **extra,
        "kl_heldout_initial": initial,
        "kl_heldout_initial_stderr": initial_se,
        "kl_heldout_best": best,
        "kl_heldout_best_stderr": best_se,
        "kl_train_best": mean_stderr(problem.train.kl(nll).tolist())[0],
        "best_step": trace.best_step,
        "steps": trace.steps,
        "loss_evaluations": trace.evaluations,
        "steps_per_second": trace.steps_per_second,
        "stopped_early": float(trace.stopped_early),
    }
