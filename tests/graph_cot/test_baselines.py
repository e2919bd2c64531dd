"""Baseline policies: closed-form evidence accuracy (geometric in depth) against simulation."""

import random

import pytest
from harness.plugins.graph_cot.baselines import (
    BaselineLM,
    best_of_n,
    evidence_closed_form,
    majority_accuracy,
    policy_answer,
)
from harness.plugins.graph_cot.graphs import make_problem
from harness.plugins.graph_cot.scoring import decision_ok, evidence_ok, parse_answer

from harness.backends.base import SamplingParams
from harness.errors import UsageError


def simulate(policy, depth, trials=3000, seed=0):
    rng = random.Random(seed)
    evidence = decision = 0
    for _ in range(trials):
        problem = make_problem(depth, rng)
        cot, choice = policy_answer(policy, problem, rng)
        evidence += evidence_ok(problem, cot)
        decision += decision_ok(problem, choice)
    return evidence / trials, decision / trials


@pytest.mark.parametrize("policy", ["random-path", "random-shortest-path"])
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_simulation_matches_closed_form(policy, depth):
    p = evidence_closed_form(policy, depth)
    evidence, decision = simulate(policy, depth)
    tolerance = 4 * (p * (1 - p) / 3000) ** 0.5 + 0.002  # four standard errors
    assert abs(evidence - p) < tolerance
    assert abs(decision - (1 + p) / 2) < 4 * (0.25 / 3000) ** 0.5


def test_closed_form_is_geometric_in_depth():
    for policy, ratio in (("random-path", 1 / 2), ("random-shortest-path", 1 / 4)):
        values = [evidence_closed_form(policy, d) for d in range(1, 6)]
        assert all(abs(b / a - ratio) < 1e-12 for a, b in zip(values, values[1:]))
    assert evidence_closed_form("random-path", 1) == pytest.approx(2 / 3)


def test_best_of_n_and_majority_formulas():
    assert best_of_n(0.5, 3) == pytest.approx(0.875)
    assert majority_accuracy(0.7, 1) == pytest.approx(0.7)
    assert majority_accuracy(0.7, 2) == pytest.approx(0.49 + 0.42 / 2)
    assert majority_accuracy(0.5, 7) == pytest.approx(0.5)


def test_best_of_n_simulated_through_the_backend():
    lm = BaselineLM("random-shortest-path")
    rng = random.Random(1)
    problems = [make_problem(2, rng) for _ in range(600)]
    outputs = lm.generate([p.prompt() for p in problems], SamplingParams(n=4, temperature=1.0, seed=3))
    hits = sum(any(evidence_ok(p, parse_answer(c.text).cot) for c in outs) for p, outs in zip(problems, outputs))
    expected = best_of_n(evidence_closed_form("random-shortest-path", 2), 4)
    assert abs(hits / 600 - expected) < 4 * (expected * (1 - expected) / 600) ** 0.5
    again = lm.generate([problems[0].prompt()], SamplingParams(n=4, temperature=1.0, seed=3))
    assert [c.text for c in again[0]] == [c.text for c in outputs[0]]  # seeded


def test_budget_cuts_the_chain_and_bad_names_fail():
    lm = BaselineLM("random-path")
    out = lm.generate([make_problem(3, random.Random(0)).prompt()], SamplingParams(max_tokens=3))[0][0]
    assert len(out.text.split()) == 3 and out.finish_reason == "length"
    with pytest.raises(UsageError, match="random-path"):
        BaselineLM("random-walk")
    with pytest.raises(UsageError, match="graph_cot prompts"):
        lm.generate(["hello"], SamplingParams())
