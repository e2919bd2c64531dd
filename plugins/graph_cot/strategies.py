"""The chains of thought a model is trained to write, all seeded by the caller's ``random.Random``.

- ``optimal``: a shortest start-to-target path.
- ``path``: the DFS stack when the target is found: a simple path, not necessarily shortest.
- ``dfs``: DFS order of first discovery up to the target, dead ends included (the reference's "dfs-pruned").
- ``dfs-bt``: the DFS walk with backtracking revisits (every node on the stack each time it is on top).
- ``walk-L``: a random walk conditioned to hit the target within L steps (L raised to the shortest length when
  smaller), sampled exactly from hitting probabilities.
DFS picks a uniformly random unvisited neighbour at every step, as the reference does.
"""

from __future__ import annotations

import random

from harness.plugins.graph_cot.graphs import Problem, shortest_path

STRATEGIES = ("optimal", "path", "dfs", "dfs-bt", "walk-L")


def check_strategy(name: str) -> str:
    """Return ``name`` if it is a known strategy (``walk-12`` style for walks), else raise ValueError."""
    if name in STRATEGIES and name != "walk-L":
        return name
    if name.startswith("walk-") and name[5:].isdigit() and int(name[5:]) > 0:
        return name
    raise ValueError(f"unknown CoT strategy '{name}' (choose from optimal, path, dfs, dfs-bt, walk-<L>)")


def chain_of_thought(problem: Problem, strategy: str, rng: random.Random) -> list[str]:
    """The CoT node list for ``problem`` under ``strategy``; it starts at the start and ends at the target."""
    check_strategy(strategy)
    if strategy == "optimal":
        return shortest_path(problem, problem.start, problem.target)
    if strategy.startswith("walk-"):
        return conditioned_walk(problem, int(strategy[5:]), rng)
    discovery, stack, walk = depth_first(problem, rng)
    return {"dfs": discovery, "path": stack, "dfs-bt": walk}[strategy]


def depth_first(problem: Problem, rng: random.Random) -> tuple[list[str], list[str], list[str]]:
    """One randomised DFS from the start until the target: (discovery order, final stack, walk with
    revisits)."""
    seen, stack = {problem.start}, [problem.start]
    discovery, walk = [problem.start], [problem.start]
    while stack[-1] != problem.target:
        fresh = [v for v in problem.neighbours(stack[-1]) if v not in seen]
        if fresh:
            node = rng.choice(fresh)
            seen.add(node)
            stack.append(node)
            discovery.append(node)
        else:
            stack.pop()
            if not stack:
                raise ValueError("the target is not reachable from the start")
        walk.append(stack[-1])
    return discovery, list(stack), walk


def hitting_probabilities(problem: Problem, steps: int) -> list[dict[str, float]]:
    """``p[k][v]``: probability that a simple random walk from v reaches the target within k steps."""
    nodes = list(problem.adjacency)
    table = [{v: float(v == problem.target) for v in nodes}]
    for _ in range(steps):
        last = table[-1]
        table.append(
            {
                v: 1.0
                if v == problem.target
                else sum(last[u] for u in problem.neighbours(v)) / len(problem.neighbours(v))
                for v in nodes
            }
        )
    return table


def conditioned_walk(problem: Problem, length: int, rng: random.Random) -> list[str]:
    """A random walk from the start, conditioned to reach the target within ``length`` steps; stops there."""
    length = max(length, len(shortest_path(problem, problem.start, problem.target)) - 1)
    table = hitting_probabilities(problem, length)
    walk = [problem.start]
    while walk[-1] != problem.target:
        left = length - len(walk)  # steps left after the next one
        options = problem.neighbours(walk[-1])
        weights = [table[left][u] for u in options]
        walk.append(rng.choices(options, weights)[0])
    return walk
