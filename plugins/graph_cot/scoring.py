"""Reading and scoring answers: evidence, decision, majority vote, best-of-N and CoT budgets.

Evidence (the paper's verifier): the CoT starts at the start, ends at the reachable target and lists
every node
only once it is adjacent to a node listed before it (the start excepted). A bare walk and a DFS discovery
order
both pass; naming a node of the other copy, or jumping ahead, fails.
Decision: the answer must name the reachable candidate.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from harness.plugins.graph_cot.graphs import Problem


@dataclass(frozen=True)
class Answer:
    cot: list[str]
    decision: str | None


def evidence_ok(problem: Problem, cot: list[str]) -> bool:
    """Whether ``cot`` proves that the target is reachable from the start."""
    if len(cot) < 2 or cot[0] != problem.start or cot[-1] != problem.target:
        return False
    allowed = {problem.start}
    for node in cot:
        if node not in allowed:
            return False
        allowed.update(problem.neighbours(node))
    return True


def decision_ok(problem: Problem, decision: str | None) -> bool:
    return decision == problem.target


_NUMBER = re.compile(r"\d+")
_DECISION = re.compile(r"(decision|answer|reachable(?: node)?)(?:\s+is)?\s*[:=]?\s*(?:node\s*)?(\d+)", re.I)
_WORK = re.compile(r"work\s*:", re.I)


def parse_answer(text: str) -> Answer:
    """Tolerant reading of a completion: the CoT is the numbers after ``work:`` (or from the start of the
    text) up to the decision; the decision is the number right after ``decision``/``answer``/``reachable``.
    A completion that states no decision has none (scored wrong, counted as a parse failure): a number is never
    picked out of the text as its decision."""
    work = _WORK.search(text)
    body = text[work.end() :] if work else text
    match = _DECISION.search(body)
    cot_text = body[: match.start()] if match else body
    return Answer(_NUMBER.findall(cot_text), match.group(2) if match else None)


def parse_tokens(tokens: list[str]) -> tuple[list[str], str | None, bool]:
    """A scratch model's generated tokens -> (CoT, decision, finished), read in its trained format."""
    cot, decision, finished = [], None, False
    seen_work = False
    for i, token in enumerate(tokens):
        if token == "work:" and not seen_work:
            seen_work = True
        elif token == "decision:":
            decision = tokens[i + 1] if i + 1 < len(tokens) else None
            finished = decision is not None
            break
        elif token.isdigit():
            cot.append(token)
        else:
            break
    return cot, decision, finished


def majority(decisions: list[str | None], rng: random.Random) -> str | None:
    """The most frequent decision among those given (None abstains); ties broken at random."""
    counts: dict[str, int] = {}
    for d in decisions:
        if d is not None:
            counts[d] = counts.get(d, 0) + 1
    if not counts:
        return None
    best = max(counts.values())
    return rng.choice(sorted(d for d, c in counts.items() if c == best))


def vote_and_best(problem: Problem, answers: list[Answer], rng: random.Random) -> tuple[bool, bool]:
    """(majority-vote decision correct, any answer's evidence valid) for one problem's N answers."""
    decision = majority([a.decision for a in answers], rng)
    return decision_ok(problem, decision), any(evidence_ok(problem, a.cot) for a in answers)
