"""Exact softmax attention computed a few heads at a time: the fast path for bfloat16 on a CPU.

PyTorch's CPU flash-attention kernel is slow in bfloat16 for small heads: at head size 32 and 256 positions
its backward alone takes ~3x its forward. Plain attention, ``softmax(q k^T / sqrt(hs) + mask) v``, is faster
there as long as the (T, T) scores of the heads in flight stay in cache: the matmuls then run on the CPU's
bfloat16 units and the softmax never goes to memory. So both passes walk over groups of heads whose scores
fill about a megabyte; the backward recomputes a group's probabilities instead of storing them (as flash
attention does). Same maths as ``F.scaled_dot_product_attention`` up to float rounding
(tests/test_models.py compares outputs and gradients); 2.3x faster forward + backward at the training
benchmark's shape (benchmarks/train_throughput.py).
"""

from __future__ import annotations

import torch

SCORES_BYTES = 1 << 20  # scores held per group of heads


def heads_per_group(T: int, itemsize: int) -> int:
    return max(1, SCORES_BYTES // (T * T * itemsize))


def score_bias(T: int, causal: bool, dtype: torch.dtype) -> torch.Tensor:
    """(T, T) added to the scores: -inf above the diagonal when causal, zero elsewhere."""
    bias = torch.zeros(T, T, dtype=dtype)
    return bias.masked_fill_(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf")) if causal else bias


class GroupedAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, causal: bool):
        shape, (T, hs) = q.shape, q.shape[-2:]
        q, k, v = (t.reshape(-1, T, hs) for t in (q, k, v))  # (B*nh, T, hs)
        bias, scale = score_bias(T, causal, q.dtype), hs**-0.5
        group = heads_per_group(T, q.element_size())
        out = torch.empty_like(q)
        for g in range(0, q.size(0), group):
            heads = slice(g, g + group)
            probs = torch.softmax(torch.baddbmm(bias, q[heads], k[heads].transpose(1, 2), alpha=scale), -1)
            torch.bmm(probs, v[heads], out=out[heads])
        ctx.save_for_backward(q, k, v, bias)
        ctx.shape, ctx.group, ctx.scale = shape, group, scale
        return out.view(shape)

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, bias = ctx.saved_tensors
        grad_out = grad_out.reshape(q.shape)
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        for g in range(0, q.size(0), ctx.group):
            heads = slice(g, g + ctx.group)
            probs = torch.softmax(torch.baddbmm(bias, q[heads], k[heads].transpose(1, 2), alpha=ctx.scale), -1)
            torch.bmm(probs.transpose(1, 2), grad_out[heads], out=dv[heads])
            grad_probs = torch.bmm(grad_out[heads], v[heads].transpose(1, 2))
            grad_scores = torch._softmax_backward_data(grad_probs, probs, -1, probs.dtype).mul_(ctx.scale)
            torch.bmm(grad_scores, k[heads], out=dq[heads])
            torch.bmm(grad_scores.transpose(1, 2), q[heads], out=dk[heads])
        return dq.view(ctx.shape), dk.view(ctx.shape), dv.view(ctx.shape), None


@torch.compiler.disable  # compiled, its groups would be fused apart and the scores leave the cache
def grouped_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """Attention of (B, nh, T, hs) queries, keys and values, a group of heads at a time (no dropout)."""
    return GroupedAttention.apply(q, k, v, causal)


def prefer_grouped(q: torch.Tensor, dropout: float) -> bool:
    """Whether :func:`grouped_attention` beats the fused SDPA kernel here: bfloat16 on a CPU, no dropout."""
    return q.device.type == "cpu" and q.dtype == torch.bfloat16 and dropout == 0.0 and q.size(-2) <= 1024
