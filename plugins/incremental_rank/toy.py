"""The theorem's toy (arXiv 2306.07042): one attention head whose four weight matrices are diagonal.

f(X) = softmax(X diag(w_Q * w_K) X^T) X diag(w_V * w_O): for X of shape (B, N, d) (N tokens of dimension d), so
W_Q W_K^T = diag(w_Q * w_K) and W_V W_O = diag(w_V * w_O), and the rank of their change is the number of
coordinates that have moved. The teacher is the same map with a few non-zero coordinates of distinct sizes (its
ranks are known); the student starts at alpha times a Gaussian draw.
"""

from __future__ import annotations

import torch
from torch import nn


def diagonal_attention(x: torch.Tensor, qk: torch.Tensor, vo: torch.Tensor) -> torch.Tensor:
    """softmax(X diag(qk) X^T) X diag(vo): (B, N, d) -> (B, N, d), no mask, no 1/sqrt(d)."""
    logits = (x * qk) @ x.transpose(1, 2)  # (B, N, N)
    return (logits.softmax(dim=-1) @ x) * vo


class DiagonalAttention(nn.Module):
    """The student head: w_Q, w_K, w_V, w_O, each (d,), initialised at alpha times N(0, 1)."""

    def __init__(self, dim: int, alpha: float, generator: torch.Generator):
        super().__init__()
        self.w_q, self.w_k, self.w_v, self.w_o = (
            nn.Parameter(alpha * torch.randn(dim, generator=generator)) for _ in range(4)
        )
        self.n_head = 1

    def effective_maps(self) -> dict[str, torch.Tensor]:
        """What the rank probe reads: W_Q W_K^T and W_V W_O as (1, d, d) diagonal matrices."""
        return {"qk": torch.diag(self.w_q * self.w_k)[None], "vo": torch.diag(self.w_v * self.w_o)[None]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return diagonal_attention(x, self.w_q * self.w_k, self.w_v * self.w_o)


class ToyModel(nn.Module):
    """A wrapper so the head's probe keys read ``rank/attn.H0/...``."""

    def __init__(self, dim: int, alpha: float, generator: torch.Generator):
        super().__init__()
        self.attn = DiagonalAttention(dim, alpha, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x)


def teacher_diagonals(dim: int, qk: list[float], vo: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's diag(W_Q W_K^T) and diag(W_V W_O): the given values on the first coordinates, zeros after."""
    qk_diag, vo_diag = torch.zeros(dim), torch.zeros(dim)
    qk_diag[: len(qk)] = torch.tensor(qk)
    vo_diag[: len(vo)] = torch.tensor(vo)
    return qk_diag, vo_diag
