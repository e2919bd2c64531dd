"""Summaries of a learned feature matrix M: what FACT-RFM should find on parity and on modular addition."""

from __future__ import annotations

import torch


def support_mass(M: torch.Tensor, k: int) -> float:
    """Fraction of M's diagonal (its trace) on the first k coordinates, the sparse parity's support (k/d at M = I)."""
    diagonal = M.diagonal().abs()
    return float(diagonal[:k].sum() / diagonal.sum().clamp(min=1e-300))


def circulant_fraction(M: torch.Tensor, p: int) -> float:
    """How circulant the p x p blocks of M are: the share of their variation (around each block's mean) kept by
    averaging along wrapped diagonals (entries (i, i + s mod p)), pooled over the (a, a), (b, b) and (a, b) blocks.

    For (a + b) mod p the learned blocks depend on i - j only (Fourier features), giving ~1. The diagonals of the
    (a, a) and (b, b) blocks are left out (M = I is trivially circulant), and so is each block's constant level
    (the centring c (I - 11^T / p) that one-hot inputs give from the first update). A random matrix gives ~2/p.
    """
    index = torch.arange(p)
    shift = (index[None, :] - index[:, None]) % p  # (p, p): s = j - i mod p
    kept = total = 0.0
    for row, col in ((0, 0), (p, p), (0, p)):
        block = M[row : row + p, col : col + p].double()
        mask = shift != 0 if row == col else torch.ones(p, p, dtype=torch.bool)
        values = block[mask] - block[mask].mean()
        counts = torch.bincount(shift[mask], minlength=p).double().clamp(min=1)
        means = torch.zeros(p, dtype=torch.float64).index_add_(0, shift[mask], values) / counts  # (p,)
        kept += float((means[shift[mask]] ** 2).sum())
        total += float((values**2).sum())
    return kept / max(total, 1e-300)
