"""Repeated sampled generation: each document generated K times (lm-eval's ``repeats``, inspect's epochs), the K
scores reduced to one per document by each reducer asked for.

- ``mean``: the fraction of the K completions that are right (the metric keeps its name, e.g. ``exact_match``).
- ``maj@k``: the answer most of the first k completions give (compared after the metric's normalisation; a tie goes
  to the answer seen first), scored once: lm-eval's ``majority_vote`` filter. Metric ``<metric>_maj_at_k``.
- ``pass@k``: the chance that at least one of k completions drawn without replacement from the K is right,
  estimated without bias from the c right ones: 1 - C(K - c, k) / C(K, k) (Chen et al. 2021: the plain
  "any of the first k right" is one draw of this, with more variance). Metric ``<metric>_pass_at_k``.

Metric names use ``_at_`` and not ``@``: ``@`` is where a sweep's point starts in ``<metric>@<point>``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from harness.errors import UsageError

KINDS = ("mean", "maj", "pass")
FILTER_FUNCTIONS = ("majority_vote", "take_first")  # the lm-eval filter_list pipeline read as maj@repeats


@dataclass(frozen=True)
class Reducer:
    """One way to reduce a document's K scores: ``mean``, or ``maj``/``pass`` over ``k`` of them."""

    kind: str
    k: int = 0

    def key(self, metric: str) -> str:
        """The metric name this reducer reports under."""
        return metric if self.kind == "mean" else f"{metric}_{self.kind}_at_{self.k}"


def parse_reducer(text: str, repeats: int, where: str) -> Reducer:
    """``mean``, ``maj@k`` or ``pass@k`` (also ``pass_at_k``, inspect's spelling), with k <= repeats."""
    name = str(text).strip()
    if name == "mean":
        return Reducer("mean")
    match = re.fullmatch(r"(maj|pass)(?:@|_at_)(\d+)", name)
    if not match:
        raise UsageError(f"{where}: reducer '{name}' is not one of mean, maj@k, pass@k (e.g. pass@1, maj@5)")
    k = int(match.group(2))
    if not 1 <= k <= repeats:
        raise UsageError(f"{where}: {name} needs 1 <= k <= repeats ({repeats}); raise repeats or lower k")
    return Reducer(match.group(1), k)


def parse_reducers(value, repeats: int, where: str) -> list[Reducer]:
    """A list (YAML) or comma-separated text (command line) of reducers, none twice; default ``mean``."""
    items = [v for v in (value.split(",") if isinstance(value, str) else value or []) if str(v).strip()]
    reducers = [parse_reducer(v, repeats, where) for v in items] or [Reducer("mean")]
    if len(set(reducers)) != len(reducers):
        raise UsageError(f"{where}: a reducer is listed twice ({', '.join(map(str, items))}); list each once")
    return reducers


def filter_reducers(filter_list, repeats: int, where: str) -> list[str]:
    """lm-eval's ``filter_list`` where it means a reducer: ``[majority_vote, take_first]`` is ``maj@<repeats>``."""
    if not isinstance(filter_list, list):
        raise UsageError(f"{where}: filter_list must be a list of {{name, filter: [{{function: ...}}]}}")
    out = []
    for entry in filter_list:
        steps = entry.get("filter") if isinstance(entry, dict) else None
        functions = [s.get("function") for s in steps if isinstance(s, dict)] if isinstance(steps, list) else None
        if functions != list(FILTER_FUNCTIONS):
            raise UsageError(
                f"{where}: filter_list supports only [majority_vote, take_first] (maj@repeats); "
                "score the raw completion otherwise, or list reducers: [mean, maj@k, pass@k]"
            )
        out.append(f"maj@{repeats}")
    return out


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n - c, k) / C(n, k): the chance that k of the n completions, drawn without replacement, hold a right
    one, when c of the n are right (1 when fewer than k are wrong)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def majority(answers: list[str]) -> int:
    """The index of the first occurrence of the most common answer (ties: the answer seen first)."""
    counts = Counter(answers)
    top = max(counts.values())
    return next(i for i, a in enumerate(answers) if counts[a] == top)


def reduce(reducer: Reducer, scores: list[float], answers: list[str]) -> float:
    """One document's value under ``reducer``: its K scores, and the K normalised answers maj@k votes on."""
    if reducer.kind == "mean":
        return sum(scores) / len(scores)
    if reducer.kind == "maj":
        return scores[majority(answers[: reducer.k])]
    return pass_at_k(len(scores), int(sum(scores)), reducer.k)
