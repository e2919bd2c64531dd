"""Bridge(d) graphs, the two-copy decision task and its token sequence (arXiv 2505.21825, section 1 of
the facts).

Bridge(d) is a chain of d petals joined at hubs 0, 10, 20, ..., 10d. From hub ``h = 10 i`` the petal holds
a short path to the next hub (h, h+1, h+2, h+10: 3 edges), a long one (h, h+3, h+4, h+5, h+6, h+10: 5 edges)
and a dead end (h, h+7, h+8, h+9: 3 edges), so Bridge(d) has 10d + 1 nodes and 11d edges (Bridge(5): 51
and 55)
and the shortest path from hub 0 to hub 10d has 3d edges.

The decision task puts two disjoint copies side by side. Start: hub 0 of copy 1. Candidates: the last hub
of each
copy, shown in random order; only copy 1's is reachable. Node names are distinct numbers drawn from a pool of
``pool`` tokens ("0" .. "pool-1"), edges are shuffled and each is written in a random orientation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import cached_property

PETAL_SIZE = 10  # new nodes per petal: 2 short-path, 4 long-path, 3 dead-end internal nodes and the next hub
SHORT, LONG, DEAD = 3, 5, 3  # edges of each branch
MAX_DEPTH = 64
GRAPH, TASK, TO, OR, SEP, WORK, DECISION = "graph:", "task:", "to", "or", "/", "work:", "decision:"
KEYWORDS = (GRAPH, TASK, TO, OR, SEP, WORK, DECISION)


def bridge_edges(depth: int) -> list[tuple[int, int]]:
    """The edges of Bridge(depth) on nodes 0 .. 10 * depth (hubs are the multiples of 10)."""
    edges = []
    for petal in range(depth):
        hub, next_hub = PETAL_SIZE * petal, PETAL_SIZE * (petal + 1)
        for branch in (
            [hub, hub + 1, hub + 2, next_hub],
            [hub, hub + 3, hub + 4, hub + 5, hub + 6, next_hub],
            [hub, hub + 7, hub + 8, hub + 9],
        ):
            edges += list(zip(branch, branch[1:]))
    return edges


def node_count(depth: int) -> int:
    return PETAL_SIZE * depth + 1


def shortest_path_edges(depth: int) -> int:
    return SHORT * depth


def default_pool(depth: int) -> int:
    """Node-token pool: ten tokens more than the 2 (10d + 1) nodes of the two copies. Small on purpose: every
    token then shows up in most training sequences, which the CPU-sized preset needs to learn in minutes."""
    return 2 * node_count(depth) + 10


@dataclass(frozen=True)
class Problem:
    """One decision instance, already in token names."""

    edges: tuple[tuple[str, str], ...]  # as shown: shuffled, each randomly oriented
    start: str
    candidates: tuple[str, str]  # as shown, random order
    target: str  # the reachable candidate
    depth: int = 0
    extra: dict = field(default_factory=dict, compare=False)

    @cached_property
    def adjacency(self) -> dict[str, list[str]]:
        adj: dict[str, list[str]] = {}
        for u, v in self.edges:
            adj.setdefault(u, []).append(v)
            adj.setdefault(v, []).append(u)
        return adj

    def neighbours(self, node: str) -> list[str]:
        return self.adjacency.get(node, [])

    def prompt_tokens(self) -> list[str]:
        """``graph: u v u v ... task: s to t1 or t2 /``: the part the model reads."""
        graph = [name for edge in self.edges for name in edge]
        t1, t2 = self.candidates
        return [GRAPH, *graph, TASK, self.start, TO, t1, OR, t2, SEP]

    def prompt(self) -> str:
        return " ".join(self.prompt_tokens())

    def to_dict(self) -> dict:
        return {
            "edges": [list(e) for e in self.edges],
            "start": self.start,
            "candidates": list(self.candidates),
            "target": self.target,
            "depth": self.depth,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Problem:
        return cls(
            tuple(tuple(e) for e in data["edges"]),
            data["start"],
            tuple(data["candidates"]),
            data["target"],
            data.get("depth", 0),
        )


def completion_tokens(cot: list[str], decision: str) -> list[str]:
    """``work: <CoT nodes> decision: t``: the part the model writes (and is trained on)."""
    return [WORK, *cot, DECISION, decision]


def make_problem(depth: int, rng: random.Random, pool: int | None = None) -> Problem:
    """A random decision instance on two copies of Bridge(depth)."""
    if not 1 <= depth <= MAX_DEPTH:
        raise ValueError(f"depth {depth} must be between 1 and {MAX_DEPTH}")
    n = node_count(depth)
    pool = pool or default_pool(depth)
    if pool < 2 * n:
        raise ValueError(f"pool {pool} is smaller than the {2 * n} nodes of two Bridge({depth}) copies")
    names = [str(i) for i in rng.sample(range(pool), 2 * n)]
    base = bridge_edges(depth)
    edges = [(names[u], names[v]) for u, v in base] + [(names[n + u], names[n + v]) for u, v in base]
    rng.shuffle(edges)
    edges = [(u, v) if rng.random() < 0.5 else (v, u) for u, v in edges]
    target, decoy = names[n - 1], names[2 * n - 1]
    candidates = (target, decoy) if rng.random() < 0.5 else (decoy, target)
    return Problem(tuple(edges), names[0], candidates, target, depth)


def parse_prompt(text: str) -> Problem | None:
    """Read a problem back from any text holding ``graph: u v ... task: s to t1 or t2`` (raw or plain-text
    prompts); the target is unknown to a reader, so it is set to the candidate reachable from the start."""
    tokens = text.replace(",", " ").split()
    if GRAPH not in tokens or TASK not in tokens:
        return None
    g = len(tokens) - 1 - tokens[::-1].index(GRAPH)  # the last problem (a prompt may show an example first)
    t = len(tokens) - 1 - tokens[::-1].index(TASK)
    if t < g or len(tokens) < t + 6:
        return None
    start, to, t1, orr, t2 = tokens[t + 1 : t + 6]
    graph = tokens[g + 1 : t]
    if to != TO or orr != OR or len(graph) % 2:
        return None
    edges = tuple(zip(graph[0::2], graph[1::2]))
    problem = Problem(edges, start, (t1, t2), t1)
    reachable = t1 if t1 in reachable_from(problem, start) else t2
    return Problem(edges, start, (t1, t2), reachable)


def reachable_from(problem: Problem, start: str) -> set[str]:
    seen, stack = {start}, [start]
    while stack:
        for v in problem.neighbours(stack.pop()):
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return seen


def shortest_path(problem: Problem, source: str, goal: str) -> list[str] | None:
    """A shortest path by breadth-first search (ties broken by the shown edge order)."""
    parent = {source: None}
    frontier = [source]
    while frontier:
        nxt = []
        for u in frontier:
            for v in problem.neighbours(u):
                if v not in parent:
                    parent[v] = u
                    nxt.append(v)
        frontier = nxt
    if goal not in parent:
        return None
    path = [goal]
    while parent[path[-1]] is not None:
        path.append(parent[path[-1]])
    return path[::-1]
