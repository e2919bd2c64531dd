"""Summaries of a learned feature matrix M: what FACT-RFM should find on parity and on modular addition."""

from __future__ import annotations

import torch


def support_mass(M: torch.Tensor, k: int) -> float:
    """Fraction of M's diagonal (its trace) on the first k coordinates, the sparse parity's support (k/d at M = I)."""
    diagonal = M.diagonal().abs()
    return float(diagonal[:k].sum() / diagonal.sum().clamp(min=1e-300))


def circulant_fraction(M: torch.Tensor, p: int) -> float:
    """How circulant the (a, a) and (b, b) blocks of M are, off their diagonals: the share of their off-diagonal
    energy kept by averaging along wrapped diagonals (entries (i, i + s mod p), s = 1 .. p-1).

    For (a + b) mod p the learned blocks depend on i - j only (Fourier features), giving ~1; the diagonal alone
    is excluded because M = I is trivially circulant; a random matrix gives about 1/p.
    """
    index = torch.arange(p)
    shift = (index[None, :] - index[:, None]) % p  # (p, p): s = j - i mod p
    off = shift != 0
    kept = total = 0.0
    for start in (0, p):
        block = M[start: start + p, start: start + p].double()
        sums = torch.zeros(p, dtype=torch.float64).index_add_(0, shift[off], block[off])  # (p,)
        means = sums / p  # a wrapped diagonal has p entries
        kept += float((means[shift[off]] ** 2).sum())
        total += float((block[off] ** 2).sum())
    return kept / max(total, 1e-300)
