"""The evidence checker and answer parsing on hand-made cases."""

import random

from harness.plugins.graph_cot.graphs import Problem
from harness.plugins.graph_cot.scoring import (
    Answer,
    evidence_ok,
    majority,
    parse_answer,
    parse_tokens,
    vote_and_best,
)

# copy 1: 1-2, 2-3, 1-4 (a dead end), 3-5 = target; copy 2: 6-7, 7-8 = decoy
EDGES = (("2", "1"), ("2", "3"), ("1", "4"), ("5", "3"), ("6", "7"), ("8", "7"))
P = Problem(EDGES, "1", ("8", "5"), "5")


def test_paths_and_search_orders_are_evidence():
    assert evidence_ok(P, ["1", "2", "3", "5"])
    assert evidence_ok(P, ["1", "4", "2", "3", "5"])  # DFS discovery: 2 is adjacent to 1, listed earlier
    assert evidence_ok(P, ["1", "4", "1", "2", "3", "5"])  # backtracking revisit


def test_broken_chains_are_not_evidence():
    assert not evidence_ok(P, ["1", "3", "5"])  # 3 is not adjacent to anything listed before it
    assert not evidence_ok(P, ["2", "3", "5"])  # does not start at the start
    assert not evidence_ok(P, ["1", "2", "3"])  # does not end at the target
    assert not evidence_ok(P, ["1", "2", "8"])  # ends at the decoy
    assert not evidence_ok(P, ["1", "7", "8"])  # jumps into the other copy
    assert not evidence_ok(P, ["1", "2", "9", "3", "5"])  # names a node that does not exist
    assert not evidence_ok(P, ["1"]) and not evidence_ok(P, [])


def test_parse_answer_is_tolerant():
    assert parse_answer("work: 1 2 3 5 decision: 5") == Answer(["1", "2", "3", "5"], "5")
    assert parse_answer(" 1, 2, 3, 5\nDecision: 5") == Answer(["1", "2", "3", "5"], "5")
    assert parse_answer("Work: 1 -> 2 -> 3 -> 5. The answer is 5").decision == "5"
    assert parse_answer("no idea") == Answer([], None)


def test_a_decision_is_never_guessed_from_the_text():
    assert parse_answer("I think 8 is reachable.").decision is None  # names a candidate, states no decision
    assert parse_answer("work: 1 2 3 5").decision is None


def test_parse_tokens_is_strict():
    assert parse_tokens(["work:", "1", "2", "decision:", "5", "<eos>"]) == (["1", "2"], "5", True)
    assert parse_tokens(["work:", "1", "2", "3"]) == (["1", "2", "3"], None, False)
    assert parse_tokens(["work:", "1", "or", "decision:", "5"]) == (["1"], None, False)


def test_majority_vote_and_best_of_n():
    rng = random.Random(0)
    assert majority(["5", "8", "5", None], rng) == "5"
    assert majority([None, None], rng) is None
    assert {majority(["5", "8"], random.Random(s)) for s in range(20)} == {"5", "8"}
    answers = [Answer(["1", "3"], "8"), Answer(["1", "2", "3", "5"], "8"), Answer([], "5")]
    assert vote_and_best(P, answers, rng) == (False, True)
    assert vote_and_best(P, answers[:1] + answers[2:] * 2, rng) == (True, False)
