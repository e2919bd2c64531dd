"""Targets with low-dimensional support, their leap, and the isotropic data they are learned on.

A target is a sum of orthonormal basis functions of a few coordinates: Fourier-Walsh monomials prod_{i in S} x_i on
uniform Boolean data x in {-1, +1}^d, or products of normalised Hermite polynomials prod_i He_{k_i}(x_i) / sqrt(k_i!)
on Gaussian data x ~ N(0, I_d). Written as text: ``x1 + x1*x2 + x1*x2*x3``; ``x1^2`` is He_2(x1) / sqrt(2) (Gaussian
data only, since x^2 = 1 on the cube). Coordinates are 1-based in text and 0-based in code.

The leap (arXiv 2302.11055) of a target with support terms S_1..S_n: the smallest, over orderings of the terms, of
the largest number of coordinates a term adds to those of the terms before it, counted with their degree (so He_k(x1)
has leap k). The paper's conjecture: online SGD needs ~ d^max(Leap - 1, 1) steps (one sample each) to learn it.
"""

from __future__ import annotations

import math
import re

from harness.errors import UsageError

NAMED = {
    "staircase": "x1 + x1*x2 + x1*x2*x3",  # leap 1: each term adds one coordinate
    "leap2": "x1 + x1*x2*x3",  # leap 2: x1 alone, then two new coordinates at once
    "leap3": "x1*x2*x3",  # leap 3: three new coordinates at once (a 3-sparse parity on the cube)
}
DATA = ("boolean", "gaussian")
Term = tuple[tuple[int, int], ...]  # ((coordinate, degree), ...) sorted by coordinate


def parse_target(spec: str, data: str = "boolean") -> list[Term]:
    """The terms of a named target or of a text like ``x1 + x1*x2^2``; UsageError names what is wrong."""
    text = NAMED.get(spec, spec)
    terms: list[Term] = []
    for raw in text.replace(" ", "").split("+"):
        degrees: dict[int, int] = {}
        for factor in raw.split("*"):
            match = re.fullmatch(r"x(\d+)(?:\^(\d+))?", factor)
            if not match or int(match.group(1)) < 1:
                raise UsageError(
                    f"target={spec}: '{factor}' is not a factor like x3 or x3^2; write e.g. "
                    f"x1+x1*x2 or one of {', '.join(NAMED)}"
                )
            coordinate, degree = int(match.group(1)) - 1, int(match.group(2) or 1)
            degrees[coordinate] = degrees.get(coordinate, 0) + degree
        if data == "boolean" and any(k > 1 for k in degrees.values()):
            raise UsageError(
                f"target={spec}: a power of a coordinate is 1 on Boolean data; use data=gaussian "
                "(Hermite polynomials) or distinct coordinates"
            )
        term = tuple(sorted(degrees.items()))
        if term in terms:
            raise UsageError(f"target={spec}: the term {raw} appears twice; give each term once")
        terms.append(term)
    return terms


def leap(terms: list[Term]) -> int:
    """min over orderings of max over terms of the degree a term adds beyond the coordinates of earlier terms.

    A dynamic program over subsets of terms: the coordinates covered by a set of terms do not depend on their
    order, so best[set] = min over its last term t of max(best[set - t], new degree of t given set - t).
    """
    count = len(terms)
    coords = [set(c for c, _ in term) for term in terms]
    best = [0] + [math.inf] * ((1 << count) - 1)
    for mask in range(1, 1 << count):
        for last in range(count):
            if mask >> last & 1:
                before = mask & ~(1 << last)
                covered = set().union(*(coords[i] for i in range(count) if before >> i & 1))
                new = sum(k for c, k in terms[last] if c not in covered)
                best[mask] = min(best[mask], max(best[before], new))
    return int(best[-1])


def support(terms: list[Term]) -> list[int]:
    """The coordinates the target depends on, in increasing order (0-based)."""
    return sorted({c for term in terms for c, _ in term})


def sample(data: str, count: int, d: int, generator):
    """(count, d) isotropic inputs: uniform signs or standard normal, on the generator's device."""
    import torch

    if data == "boolean":
        return torch.randint(0, 2, (count, d), generator=generator, device=generator.device).float() * 2 - 1
    return torch.randn(count, d, generator=generator, device=generator.device)


def hermite(k: int, x):
    """The probabilists' Hermite polynomial He_k(x) / sqrt(k!): orthonormal under N(0, 1)."""
    previous, current = x.new_ones(x.shape), x
    if k == 0:
        return previous
    for n in range(1, k):
        previous, current = current, x * current - n * previous  # He_{n+1} = x He_n - n He_{n-1}
    return current / math.sqrt(math.factorial(k))


def evaluate(terms: list[Term], x):
    """f(x) for (..., d) inputs: the sum over terms of the product of He_k(x_i) / sqrt(k!) (= x_i for k = 1)."""
    total = 0
    for term in terms:
        value = 1
        for coordinate, degree in term:
            value = value * hermite(degree, x[..., coordinate])
        total = total + value
    return total
