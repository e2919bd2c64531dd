"""Policies that need no training, served as the backend scheme ``baseline`` (``--model
baseline:random-path``).

``random-path``: a self-avoiding random walk from the start, each step to a uniformly random unvisited
neighbour,
until it reaches a candidate target or gets stuck. ``random-shortest-path``: the same walk cut after as
many steps
as the shortest start-to-target path has (3d): what a model that learned how long shortest paths are, but
not where
they go, would write. A walk that does not end on a candidate decides by a fair coin.

Closed form on the two-copy Bridge(d) task. The walk only moves forward on the short or long branch: the
start hub
has 3 unvisited neighbours (short, long, dead end) and every later hub 4 (short, long, dead end, and the other
branch back to the previous hub, which dead-ends at that visited hub); inside a branch there is one way on.
So with p the chance to reach the target, evidence accuracy is

    random-path:           p(d) = (2/3) (1/2)^(d-1)   (pick short or long at every hub)
    random-shortest-path:  p(d) = (1/3) (1/4)^(d-1)   (pick the short branch at every hub)

both geometric in d. Decision accuracy is (1 + p) / 2; with N independent samples best-of-N evidence is
1 - (1 - p)^N and the majority vote follows the binomial law of :func:`majority_accuracy`.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

from harness.plugins.graph_cot.graphs import Problem, parse_prompt, shortest_path

from harness.backends.base import LM, Completion, SamplingParams
from harness.errors import UsageError
from harness.seeding import rng

POLICIES = ("random-path", "random-shortest-path")


def random_walk(problem: Problem, rng: random.Random) -> list[str]:
    """Self-avoiding walk from the start until a candidate or a node with no unvisited neighbour."""
    walk, seen = [problem.start], {problem.start}
    while walk[-1] not in problem.candidates:
        fresh = [v for v in problem.neighbours(walk[-1]) if v not in seen]
        if not fresh:
            break
        walk.append(rng.choice(fresh))
        seen.add(walk[-1])
    return walk


def policy_answer(policy: str, problem: Problem, rng: random.Random) -> tuple[list[str], str]:
    """(CoT, decision) of a baseline policy."""
    walk = random_walk(problem, rng)
    if policy == "random-shortest-path":
        steps = len(shortest_path(problem, problem.start, problem.target)) - 1
        walk = walk[: steps + 1]
    elif policy != "random-path":
        raise UsageError(f"unknown baseline '{policy}': choose one of {', '.join(POLICIES)}")
    decision = walk[-1] if walk[-1] in problem.candidates else rng.choice(problem.candidates)
    return walk, decision


def evidence_closed_form(policy: str, depth: int) -> float:
    """Evidence accuracy of one sample of ``policy`` on Bridge(depth) (see the module docstring)."""
    first, later = {
        "random-path": (Fraction(2, 3), Fraction(1, 2)),
        "random-shortest-path": (Fraction(1, 3), Fraction(1, 4)),
    }[policy]
    return float(first * later ** (depth - 1))


def best_of_n(p: float, n: int) -> float:
    return 1 - (1 - p) ** n


def majority_accuracy(q: float, n: int) -> float:
    """Chance that the majority of n independent two-way votes, each right with probability q, is right
    (ties broken by a fair coin)."""
    total = 0.0
    for right in range(n + 1):
        weight = math.comb(n, right) * q**right * (1 - q) ** (n - right)
        total += weight * (1.0 if 2 * right > n else 0.5 if 2 * right == n else 0.0)
    return total


class BaselineLM(LM):
    """An LM whose completions come from a baseline policy reading the graph out of the prompt."""

    def __init__(self, policy: str):
        if policy not in POLICIES:
            raise UsageError(
                f"unknown baseline '{policy}': use --model baseline:random-path or baseline:random-shortest-path"
            )
        self.policy = policy
        self.name = f"baseline:{policy}"
        self.fingerprint = f"baseline:{policy}:v2"  # v2: per-sample streams (harness.seeding)

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        out = []
        for prompt in prompts:
            problem = parse_prompt(prompt)
            if problem is None:
                raise UsageError(f"{self.name} reads graph_cot prompts only (graph: ... task: s to t1 or t2)")
            completions = []
            for k in range(params.n):  # the k-th sample's stream: derive_seed(seed, prompt, k), as on every engine
                cot, decision = policy_answer(self.policy, problem, rng(params.seed, prompt, k))
                words = ["work:", *cot, "decision:", decision]
                cut = words[: params.max_tokens]  # one word per token: the budget cuts the chain
                finish = "stop" if cut == words else "length"
                completions.append(Completion(" ".join(cut), finish_reason=finish))
            out.append(completions)
        return out

    def loglikelihood(self, requests):
        raise UsageError(f"{self.name} is a policy, not a language model: it can only generate")

    loglikelihood_rolling = loglikelihood


def make_baseline(target: str, **model_args) -> BaselineLM:
    if model_args:
        raise UsageError(f"baseline models take no --model-args (got {', '.join(model_args)})")
    return BaselineLM(target)
