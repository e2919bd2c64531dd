"""Bridge(d) generator and CoT strategies: counts, reachability, shortest paths, valid chains, seeding."""

import random

import pytest
from harness.plugins.graph_cot.graphs import (
    Problem,
    bridge_edges,
    default_pool,
    make_problem,
    node_count,
    parse_prompt,
    reachable_from,
    shortest_path,
)
from harness.plugins.graph_cot.scoring import evidence_ok
from harness.plugins.graph_cot.strategies import chain_of_thought, check_strategy

DEPTHS = [1, 2, 3, 4, 5]
STRATEGIES = ["optimal", "path", "dfs", "dfs-bt", "walk-40"]


def test_bridge5_has_51_nodes_and_55_edges():
    edges = bridge_edges(5)
    assert len({n for e in edges for n in e}) == 51 == node_count(5)
    assert len(edges) == 55 and len(set(map(frozenset, edges))) == 55


@pytest.mark.parametrize("depth", DEPTHS)
def test_two_copy_instance_invariants(depth):
    problem = make_problem(depth, random.Random(depth))
    nodes = {n for e in problem.edges for n in e}
    assert len(nodes) == 2 * (10 * depth + 1) and len(problem.edges) == 2 * 11 * depth
    assert problem.target in problem.candidates and len(set(problem.candidates)) == 2
    reach = reachable_from(problem, problem.start)
    assert [c in reach for c in problem.candidates].count(True) == 1 and problem.target in reach
    assert len(reach) == 10 * depth + 1  # the start's copy, nothing of the other
    assert len(shortest_path(problem, problem.start, problem.target)) - 1 == 3 * depth
    assert all(int(n) < default_pool(depth) for n in nodes)


def test_instances_are_shuffled_oriented_and_seeded():
    a, b = make_problem(3, random.Random(7)), make_problem(3, random.Random(7))
    assert a == b and a != make_problem(3, random.Random(8))
    starts, orientations = set(), set()
    for seed in range(30):
        p = make_problem(1, random.Random(seed))
        starts.add(p.start)
        orientations.add(p.edges[0][0] in reach_set(p))
        assert p.candidates.index(p.target) in (0, 1)
    assert len(starts) > 20
    problems = [make_problem(1, random.Random(s)) for s in range(40)]
    targets_first = [p.candidates[0] == p.target for p in problems]
    assert 5 < sum(targets_first) < 35


def reach_set(p):
    return reachable_from(p, p.start)


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_writes_valid_evidence(depth, strategy):
    rng = random.Random(depth)
    for _ in range(5):
        problem = make_problem(depth, rng)
        cot = chain_of_thought(problem, strategy, rng)
        assert cot[0] == problem.start and cot[-1] == problem.target
        assert evidence_ok(problem, cot), (strategy, cot)
        n = 10 * depth + 1
        if strategy == "optimal":
            assert len(cot) == 3 * depth + 1
        if strategy == "path":
            assert len(set(cot)) == len(cot) and all(v in problem.neighbours(u) for u, v in zip(cot, cot[1:]))
            assert 3 * depth + 1 <= len(cot) <= 5 * depth + 1
        if strategy == "dfs":
            assert len(set(cot)) == len(cot) <= n
        if strategy in ("dfs-bt", "walk-40"):
            assert all(v in problem.neighbours(u) for u, v in zip(cot, cot[1:]))
        if strategy == "walk-40":
            assert len(cot) - 1 <= max(40, 3 * depth) and problem.target not in cot[:-1]


def test_dfs_includes_dead_ends_and_path_varies():
    rng = random.Random(0)
    problem = make_problem(2, rng)
    lengths = {len(chain_of_thought(problem, "dfs", rng)) for _ in range(50)}
    paths = {tuple(chain_of_thought(problem, "path", rng)) for _ in range(50)}
    assert max(lengths) > 11 and len(paths) == 4  # short/long at each of two hubs


def test_unknown_strategy_is_rejected():
    with pytest.raises(ValueError, match="unknown CoT strategy"):
        check_strategy("bfs")
    assert check_strategy("walk-12") == "walk-12"


def test_prompt_round_trip_and_format():
    problem = make_problem(1, random.Random(3))
    tokens = problem.prompt_tokens()
    assert tokens[0] == "graph:" and tokens[-1] == "/" and tokens[-7] == "task:"
    assert len(tokens) == 2 * 2 * 11 + 8
    back = parse_prompt("Example:\ngraph: 1 2\ntask: 1 to 2 or 3\n\n" + problem.prompt())
    assert back == Problem(problem.edges, problem.start, problem.candidates, problem.target)
    assert parse_prompt("no graph here") is None
