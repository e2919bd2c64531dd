"""The distillation algorithm: probe which ANDs of literals a network represents linearly, then assemble the
tree of depth <= r that agrees best with the network from the probed ANDs (arXiv 2403.09053).

1. Probes (:class:`RidgeProbes`): a ridge regression from the network's hidden activations (the outputs of all its
   leaf modules, pre- and post-activation, concatenated and rescaled to unit mean square) to an AND written as
   +-1; its score is the held-out MSE divided by the AND's variance 4p(1-p) (0: perfectly represented, 1: no
   better than a constant). Closed form, one solve shared by every AND of a level (the reference fits each
   probe by Adam; ridge gives the same least-squares fit, deterministically and faster on a CPU).
2. Beam search (:func:`beam_search`): level 1 probes all 2d literals; each next level probes every one-literal
   extension of the ``width`` best-scoring ANDs of the level before, up to r literals. Every probed AND is kept
   for step 3; the beam only decides which ANDs get children.
3. Dynamic program (:func:`best_tree`): over the probed ANDs, longest first, the best agreement with the
   network's labels of the subtree rooted at an AND is either a leaf (its majority label) or a split on a
   variable whose two extensions were both probed (the sum of their best values). The root is the empty AND.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from harness.plugins.distill.trees import And, Leaf, Split, Tree, evaluate_ands, extend
from torch import nn

CHUNK = 4096  # ANDs evaluated at once: (N, CHUNK) doubles, 64 MB at N = 2000


def activations(model: nn.Module, x: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """(N, F): the outputs of every leaf module of ``model`` on x, flattened and concatenated in call order."""
    leaves = [m for m in model.modules() if not list(m.children())]
    outputs: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out.detach().flatten(1))) for m in leaves]
    chunks = []
    try:
        with torch.no_grad():
            for start in range(0, x.size(0), batch):
                outputs.clear()
                model(x[start : start + batch])
                chunks.append(torch.cat(outputs, dim=1))
    finally:
        for handle in handles:
            handle.remove()
    return torch.cat(chunks).float()


class RidgeProbes:
    """Scores ANDs by how well a ridge probe on fixed features predicts them on held-out inputs."""

    def __init__(
        self,
        features: torch.Tensor,
        x: torch.Tensor,
        held_features: torch.Tensor,
        held_x: torch.Tensor,
        ridge: float = 10.0,
    ):
        scale = features.pow(2).mean().sqrt().clamp(min=1e-12)  # one scale for all, as the reference
        self.train = self._with_bias(features / scale)  # (N, F+1)
        self.held = self._with_bias(held_features / scale)  # (M, F+1)
        self.x, self.held_x = x, held_x
        gram = self.train.T.double() @ self.train.double()
        gram += ridge * self.train.size(0) * torch.eye(gram.size(0), dtype=torch.float64)
        self.solve = torch.linalg.cholesky(gram)  # the probes' normal equations, factorised once
        self.scores: dict[And, float] = {}  # every AND probed so far: beams of several widths share them

    @staticmethod
    def _with_bias(features: torch.Tensor) -> torch.Tensor:
        return torch.cat([features, torch.ones(features.size(0), 1)], dim=1)

    @property
    def used(self) -> int:
        """Distinct ANDs probed."""
        return len(self.scores)

    def __call__(self, terms: list[And]) -> torch.Tensor:
        """Normalized held-out MSE (A,) of each AND (as +-1). An AND is probed once (a second beam reads its score)
        and in chunks of CHUNK ANDs (a level at d = 100 and a beam of 200 has ~40,000; each AND's probe is its
        own column, so neither changes a score)."""
        new = [t for t in dict.fromkeys(terms) if t not in self.scores]
        for start in range(0, len(new), CHUNK):
            chunk = new[start : start + CHUNK]
            self.scores.update(zip(chunk, self._score(chunk).tolist()))
        return torch.tensor([self.scores[t] for t in terms])

    def _score(self, terms: list[And]) -> torch.Tensor:
        targets = evaluate_ands(terms, self.x).double() * 2 - 1  # (N, A)
        weights = torch.cholesky_solve(self.train.T.double() @ targets, self.solve)  # (F+1, A)
        held_targets = evaluate_ands(terms, self.held_x).double() * 2 - 1  # (M, A)
        errors = (self.held.double() @ weights - held_targets).pow(2).mean(0)  # (A,)
        p = torch.tensor([0.5 ** len(t) for t in terms], dtype=torch.float64)
        return (errors / (4 * p * (1 - p)).clamp(min=1e-12)).float()


def beam_search(score: Callable[[list[And]], torch.Tensor], d: int, max_depth: int, width: int) -> list[And]:
    """Every AND probed: all literals, then the one-literal extensions of the ``width`` best of each level."""
    probed: list[And] = [()]
    beam: list[And] = [()]
    for level in range(1, max_depth + 1):
        candidates = sorted(
            {
                extend(term, var, sign)
                for term in beam
                for var in range(d)
                if var not in {v for v, _ in term}
                for sign in (1, -1)
            }
        )
        probed += candidates
        if level == max_depth:
            break
        scores = score(candidates)
        best = torch.argsort(scores, stable=True)[:width]
        beam = [candidates[i] for i in best.tolist()]
    return probed


def scored(probed: list[And], max_depth: int) -> int:
    """How many of a beam search's ANDs it probed: all but the root and the last level (which only the dynamic
    program reads)."""
    return sum(1 for term in probed if 0 < len(term) < max_depth)


def splits_of(terms: list[And]) -> dict[And, list[int]]:
    """For each AND, the variables whose two extensions (+ and -) are both among ``terms``."""
    present = set(terms)
    splits: dict[And, set[int]] = {}
    for term in terms:
        for var, sign in term:
            parent = tuple(lit for lit in term if lit[0] != var)
            if sign == 1 and parent in present and extend(parent, var, -1) in present:
                splits.setdefault(parent, set()).add(var)
    return {parent: sorted(vs) for parent, vs in splits.items()}


def best_tree(terms: list[And], x: torch.Tensor, labels: torch.Tensor, max_depth: int) -> tuple[Tree, float]:
    """The tree of depth <= max_depth built from ``terms`` that agrees with ``labels`` (N,) on most inputs x (N, d),
    and that agreement (a fraction). Ties go to the leaf, then to the lowest variable."""
    terms = sorted(set(terms) | {()}, key=lambda t: (-len(t), t))
    positives, totals = [], []  # (A,) each: inputs under the AND with label +1, and all of them
    for start in range(0, len(terms), CHUNK):
        covered = evaluate_ands(terms[start : start + CHUNK], x)  # (N, chunk)
        positives += (covered & (labels > 0).unsqueeze(1)).sum(0).tolist()
        totals += covered.sum(0).tolist()
    splits = splits_of(terms)
    value: dict[And, int] = {}
    choice: dict[And, int | None] = {}  # variable to split on, or None for a leaf
    for a, term in enumerate(terms):
        value[term], choice[term] = max(positives[a], totals[a] - positives[a]), None
        if len(term) >= max_depth:
            continue
        for var in splits.get(term, ()):
            both = value[extend(term, var, 1)] + value[extend(term, var, -1)]
            if both > value[term]:
                value[term], choice[term] = both, var
    leaf_label = {term: 1 if 2 * positives[a] >= totals[a] else -1 for a, term in enumerate(terms)}

    def build(term: And) -> Tree:
        var = choice[term]
        if var is None:
            return Leaf(leaf_label[term])
        return Split(var, build(extend(term, var, 1)), build(extend(term, var, -1)))

    return build(()), value[()] / max(1, x.size(0))
