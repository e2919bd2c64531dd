"""Trees, ANDs and the two halves of the distiller: the generator's invariants, the dynamic program and the beam
search with an oracle probe, and ridge probes that can tell a represented AND from others."""

import itertools
import random

import pytest
import torch
from harness.plugins.distill.search import RidgeProbes, beam_search, best_tree
from harness.plugins.distill.trees import (
    Leaf,
    Split,
    depth,
    equivalent,
    evaluate_ands,
    extend,
    node_ands,
    predict,
    random_tree,
    uniform_inputs,
)


def all_inputs(d: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product((1.0, -1.0), repeat=d)))  # (2^d, d)


def paths(tree, used=()):
    """(variables on the path, leaf) for every leaf."""
    if isinstance(tree, Leaf):
        return [(used, tree)]
    return paths(tree.plus, used + (tree.var,)) + paths(tree.minus, used + (tree.var,))


@pytest.mark.parametrize("d, r", [(3, 1), (6, 2), (9, 3), (20, 4)])
def test_random_tree_invariants(d, r):
    for seed in range(20):
        tree = random_tree(d, r, random.Random(seed))
        leaves = paths(tree)
        assert depth(tree) == r and len(leaves) == 2**r  # complete
        for used, leaf in leaves:
            assert len(used) == r and len(set(used)) == r and all(0 <= v < d for v in used)  # no repeat on a path
            assert leaf.label in (1, -1)
        for left, right in zip(leaves[::2], leaves[1::2]):  # the two leaves under each last split differ
            assert left[1].label == -right[1].label
        assert len(node_ands(tree)) == 2 ** (r + 1) - 1
    assert random_tree(d, r, random.Random(1)) == random_tree(d, r, random.Random(1))
    assert len({random_tree(d, r, random.Random(s)) for s in range(20)}) > min(10, 2 * d - 1)
    with pytest.raises(ValueError):
        random_tree(3, 4, random.Random(0))


def test_independent_leaves_family():
    """Independent leaves: still complete trees on distinct variables per path, but some last splits carry equal
    leaves (redundant), which the opposite family never has; an unknown family is refused."""
    equal_pairs = 0
    for seed in range(30):
        tree = random_tree(9, 3, random.Random(seed), leaves="independent")
        leaves = paths(tree)
        assert depth(tree) == 3 and len(leaves) == 8
        equal_pairs += sum(a[1].label == b[1].label for a, b in zip(leaves[::2], leaves[1::2]))
    assert 0.3 < equal_pairs / (30 * 4) < 0.7  # each last split has equal leaves with probability 1/2
    with pytest.raises(ValueError, match="leaves='same'"):
        random_tree(9, 3, random.Random(0), leaves="same")


def test_equivalent_compares_functions_not_shapes():
    redundant = Split(2, Split(5, Leaf(1), Leaf(-1)), Split(5, Leaf(1), Leaf(-1)))  # the x2 test changes nothing
    assert equivalent(redundant, Split(5, Leaf(1), Leaf(-1))) and redundant != Split(5, Leaf(1), Leaf(-1))
    assert equivalent(Split(0, Leaf(1), Leaf(1)), Leaf(1))
    assert not equivalent(redundant, Split(5, Leaf(-1), Leaf(1)))
    assert not equivalent(
        Split(3, Split(1, Leaf(1), Leaf(-1)), Leaf(-1)), Split(1, Split(3, Leaf(1), Leaf(1)), Leaf(-1))
    )


def test_equivalent_agrees_with_enumerating_every_input():
    """Leaf-region pairs give the same verdict as comparing the trees on all 2^d inputs, and decide r = 5 trees on
    d = 100 (31 + 31 variables: 2^62 inputs to enumerate)."""
    rng = random.Random(3)
    x = all_inputs(6)
    verdicts = []
    for _ in range(200):
        a, b = (random_tree(6, rng.choice((1, 2, 3)), rng, leaves="independent") for _ in range(2))
        verdicts.append(equivalent(a, b))
        assert verdicts[-1] == torch.equal(predict(a, x), predict(b, x)), (a, b)
    assert any(verdicts) and not all(verdicts)
    big = random_tree(100, 5, random.Random(0), leaves="independent")
    flipped = Split(big.var, big.plus, negated(big.minus))
    assert equivalent(big, big) and not equivalent(big, flipped)
    assert equivalent(Split(1, Split(1, Leaf(1), Leaf(-1)), Leaf(-1)), Split(1, Leaf(1), Leaf(-1)))  # x1 twice


def negated(tree):
    return Leaf(-tree.label) if isinstance(tree, Leaf) else Split(tree.var, negated(tree.plus), negated(tree.minus))


def test_predict_follows_the_leaf_ands():
    """Every input satisfies exactly one leaf's path AND, and gets that leaf's label."""
    tree = random_tree(7, 3, random.Random(4))
    x = all_inputs(7)
    leaf_terms = [t for t in node_ands(tree) if len(t) == 3]
    covered = evaluate_ands(leaf_terms, x)  # (128, 8)
    assert (covered.sum(1) == 1).all()
    labels = torch.tensor([label_at(tree, t) for t in leaf_terms])
    assert torch.equal(predict(tree, x), labels[covered.float().argmax(1)])
    assert set(predict(tree, x).tolist()) == {1, -1}


def label_at(tree, term):
    """The label of the leaf whose path AND is ``term``, found by following the tree's own tests."""
    signs = dict(term)
    while isinstance(tree, Split):
        tree = tree.plus if signs[tree.var] == 1 else tree.minus
    return tree.label


def test_evaluate_ands_matches_brute_force():
    x = uniform_inputs(300, 6, torch.Generator().manual_seed(0))
    terms = [(), ((2, 1),), ((0, -1), (3, 1)), ((1, 1), (4, -1), (5, 1))]
    expected = torch.stack([torch.tensor([all(row[v] == s for v, s in t) for row in x.tolist()]) for t in terms], 1)
    assert torch.equal(evaluate_ands(terms, x), expected)


@pytest.mark.parametrize("r", [1, 2, 3, 4])
def test_dynamic_program_returns_the_target_from_its_own_ands(r):
    """An oracle probe that passes exactly the target's ANDs: the DP rebuilds the target tree itself."""
    for seed in range(5):
        target = random_tree(10, r, random.Random(seed))
        x = uniform_inputs(3000, 10, torch.Generator().manual_seed(seed))
        tree, agreement = best_tree(node_ands(target), x, predict(target, x), r)
        assert tree == target and agreement == 1.0
        # with depth limit r - 1 the target cannot be built: a shallower tree, strictly worse agreement
        shallow, worse = best_tree(node_ands(target), x, predict(target, x), r - 1)
        assert depth(shallow) <= r - 1 and worse < 1.0


def test_dynamic_program_picks_the_best_tree_among_distractors():
    target = random_tree(8, 3, random.Random(7))
    rng = random.Random(0)
    distractors = set()
    while len(distractors) < 200:  # random ANDs of 1 to 3 literals, many pairs of siblings among them
        term = ()
        for var in rng.sample(range(8), rng.randint(1, 3)):
            term = extend(term, var, rng.choice((1, -1)))
        distractors |= {term, tuple((v, -s) if i == len(term) - 1 else (v, s) for i, (v, s) in enumerate(term))}
    x = all_inputs(8)
    tree, agreement = best_tree(sorted(distractors) + node_ands(target), x, predict(target, x), 3)
    assert agreement == 1.0 and depth(tree) <= 3 and torch.equal(predict(tree, x), predict(target, x))


@pytest.mark.parametrize("r", [2, 3])
def test_beam_search_with_an_oracle_probe_recovers_the_target(r):
    d = 12
    target = random_tree(d, r, random.Random(r))
    represented = set(node_ands(target))

    def oracle(terms):
        return torch.tensor([0.0 if t in represented else 1.0 for t in terms])

    probed = beam_search(oracle, d, r, width=2 ** (r - 1))
    assert represented <= set(probed)
    assert len(probed) < 2 * d + 2 ** (r - 1) * 2 * d * (r - 1) + 1  # far fewer than all ANDs of <= r literals
    x = uniform_inputs(4000, d, torch.Generator().manual_seed(0))
    tree, agreement = best_tree(probed, x, predict(target, x), r)
    assert agreement == 1.0 and depth(tree) <= r
    assert torch.equal(predict(tree, all_inputs(d)), predict(target, all_inputs(d)))


def test_ridge_probes_score_represented_ands_low():
    """Features that hold one AND (plus noise): that AND scores ~0, other ANDs of the same size ~1."""
    d, gen = 8, torch.Generator().manual_seed(0)
    term = ((1, 1), (4, -1))
    x, held = uniform_inputs(3000, d, gen), uniform_inputs(3000, d, gen)

    def features(inputs):
        return torch.cat([evaluate_ands([term], inputs).float(), torch.randn(len(inputs), 5, generator=gen)], 1)

    probes = RidgeProbes(features(x), x, features(held), held, ridge=1e-3)
    scores = probes([term, ((1, 1), (4, 1)), ((2, -1), (5, 1))])
    assert scores[0] < 0.01 and (scores[1:] > 0.8).all() and probes.used == 3
