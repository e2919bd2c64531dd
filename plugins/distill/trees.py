"""Decision trees on x in {+1, -1}^d, ANDs of literals, and the random complete trees that are the targets.

A tree is a nested frozen dataclass (``Split(var, plus, minus)`` / ``Leaf(label)``), so two trees are equal when
they test the same variables in the same places and have the same leaves. An AND of literals is a sorted tuple of
``(variable, sign)`` pairs; the empty tuple is the always-true AND at the root. The path from the root to a node
is an AND, and a depth-r tree is determined by the ANDs of its nodes and the labels of its leaves.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

And = tuple[tuple[int, int], ...]  # ((variable, sign), ...), sorted by variable; () is "true"


@dataclass(frozen=True)
class Leaf:
    label: int  # +1 or -1


@dataclass(frozen=True)
class Split:
    var: int  # the variable tested
    plus: Tree  # subtree where x[var] = +1
    minus: Tree  # subtree where x[var] = -1


Tree = Leaf | Split


LEAVES = ("opposite", "independent")  # the two target families of random_tree


def random_tree(d: int, r: int, rng: random.Random, leaves: str = "opposite") -> Tree:
    """A complete depth-r tree: each node tests a variable drawn uniformly from those not yet on its path.

    ``leaves="opposite"``: the two leaves under each last split are opposite (no last split is redundant, never
    constant; every subtree is balanced, so no single variable correlates with the label, which is what defeats a
    greedy learner). ``leaves="independent"``: each leaf is +-1 at random, as in the reference; some splits are then
    redundant and 1 target in 2^(2^r - 1) is constant.
    """
    if not 1 <= r <= d:
        raise ValueError(f"depth r={r} needs 1 <= r <= d={d}")
    if leaves not in LEAVES:
        raise ValueError(f"leaves={leaves!r}: choose from {', '.join(LEAVES)}")

    def grow(free: list[int], depth: int) -> Tree:
        var = rng.choice(free)
        rest = [v for v in free if v != var]
        if depth == 1:
            label = rng.choice((1, -1))
            other = -label if leaves == "opposite" else rng.choice((1, -1))
            return Split(var, Leaf(label), Leaf(other))
        return Split(var, grow(rest, depth - 1), grow(rest, depth - 1))

    return grow(list(range(d)), r)


def predict(tree: Tree, x: torch.Tensor) -> torch.Tensor:
    """Labels (N,) in {+1, -1} of inputs x (N, d) in {+1, -1}."""
    if isinstance(tree, Leaf):
        return torch.full((x.size(0),), tree.label, dtype=torch.long)
    return torch.where(x[:, tree.var] > 0, predict(tree.plus, x), predict(tree.minus, x))


def variables(tree: Tree) -> set[int]:
    return set() if isinstance(tree, Leaf) else {tree.var} | variables(tree.plus) | variables(tree.minus)


def equivalent(a: Tree, b: Tree) -> bool:
    """Whether two trees compute the same function: every leaf of ``a`` and leaf of ``b`` whose paths can hold at
    once (no variable with opposite signs) have the same label. At most 2^r x 2^r pairs; enumerating the inputs
    the two trees test would take up to 2^(2 (2^r - 1)) (2^62 at r = 5). A redundant split does not make two
    trees differ."""
    regions = leaf_regions(b)
    for path, label in leaf_regions(a):
        for other_path, other_label in regions:
            if label != other_label and all(other_path.get(var, sign) == sign for var, sign in path.items()):
                return False
    return True


def leaf_regions(tree: Tree, path: dict[int, int] | None = None) -> list[tuple[dict[int, int], int]]:
    """(the literals on the path as {variable: sign}, label) of every leaf some input reaches."""
    path = path or {}
    if isinstance(tree, Leaf):
        return [(path, tree.label)]
    regions = []
    for sign, child in ((1, tree.plus), (-1, tree.minus)):
        if path.get(tree.var, sign) == sign:  # a variable tested again with the other sign: unreachable
            regions += leaf_regions(child, {**path, tree.var: sign})
    return regions


def mean_label(tree: Tree) -> float:
    """E[f(x)] over uniform x, exactly (each split halves the inputs; no variable repeats on a path)."""
    return float(tree.label) if isinstance(tree, Leaf) else (mean_label(tree.plus) + mean_label(tree.minus)) / 2


def root_correlation(tree: Tree) -> float:
    """|E[f(x) x_root]|: how visible the root's variable is to a greedy split criterion (Gini's gain of a balanced
    split grows with it). 0 for the opposite family, whose every subtree is balanced."""
    return 0.0 if isinstance(tree, Leaf) else abs(mean_label(tree.plus) - mean_label(tree.minus)) / 2


def depth(tree: Tree) -> int:
    return 0 if isinstance(tree, Leaf) else 1 + max(depth(tree.plus), depth(tree.minus))


def node_ands(tree: Tree, path: And = ()) -> list[And]:
    """The AND of the path to every node (root first, internal nodes and leaves)."""
    if isinstance(tree, Leaf):
        return [path]
    return [path] + node_ands(tree.plus, extend(path, tree.var, 1)) + node_ands(tree.minus, extend(path, tree.var, -1))


def extend(term: And, var: int, sign: int) -> And:
    return tuple(sorted(term + ((var, sign),)))


def and_matrix(terms: list[And], d: int) -> torch.Tensor:
    """(A, d) with entry sign for each literal of AND a, 0 elsewhere."""
    matrix = torch.zeros(len(terms), d)
    for row, term in enumerate(terms):
        for var, sign in term:
            matrix[row, var] = sign
    return matrix


def evaluate_ands(terms: list[And], x: torch.Tensor) -> torch.Tensor:
    """(N, A) booleans: whether input n satisfies AND a (x @ signs equals the number of literals)."""
    matrix = and_matrix(terms, x.size(1))  # (A, d)
    return (x.float() @ matrix.T) == matrix.abs().sum(1)  # (N, A)


def uniform_inputs(n: int, d: int, gen: torch.Generator) -> torch.Tensor:
    """n inputs drawn uniformly from {+1, -1}^d, as floats."""
    return torch.randint(0, 2, (n, d), generator=gen).float() * 2 - 1


def describe(tree: Tree) -> str:
    """One line: ``x3 ? (x1 ? +1 : -1) : -1``."""
    if isinstance(tree, Leaf):
        return f"{tree.label:+d}"
    return f"x{tree.var} ? ({describe(tree.plus)}) : ({describe(tree.minus)})"
