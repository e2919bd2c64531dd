"""The deep linear ResNet f(x) = B (I + W_L) ... (I + W_1) A x and its weight cost (arXiv 2501.19149)."""

from __future__ import annotations

import torch
from torch import nn


class DeepLinearResNet(nn.Module):
    """Embedding A (width, d_in), L residual layers I + W_l (width, width), unembedding B (d_out, width).

    Column-vector convention: the end-to-end matrix is M = B (I + W_L) ... (I + W_1) A, shape (d_out, d_in).
    """

    def __init__(self, d_in: int, width: int, d_out: int, depth: int, init: float = 1.0):
        super().__init__()
        self.A = nn.Parameter(torch.randn(width, d_in) * init / width**0.5)
        self.B = nn.Parameter(torch.randn(d_out, width) * init / width**0.5)
        self.W = nn.Parameter(torch.zeros(depth, width, width))  # residual branches start at 0: f = B A

    @property
    def depth(self) -> int:
        return self.W.shape[0]

    def end_to_end(self) -> torch.Tensor:
        """M = B (I + W_L) ... (I + W_1) A, (d_out, d_in)."""
        h = self.A  # (width, d_in)
        for w in self.W:  # W_1 first: it acts on A's output
            h = h + w @ h
        return self.B @ h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Row-vector inputs (n, d_in) -> (n, d_out)."""
        return x @ self.end_to_end().T

    def cost(self, lam: float) -> torch.Tensor:
        """||A||^2 + ||B||^2 + lambda L sum_l ||W_l||^2 (squared Frobenius norms)."""
        return self.A.square().sum() + self.B.square().sum() + lam * self.depth * self.W.square().sum()
