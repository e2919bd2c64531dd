"""The built-in parts a :class:`harness.models.Transformer` is assembled from.

Every part is built by a factory ``factory(config, layer_index) -> nn.Module`` looked up by name in the
``components`` registry (``attention:sdpa``, ``ffn:gelu``, ``norm:layernorm``, ...), so a plugin adds a
variant without touching the model. The contract for each kind:

- ``attention``: ``forward(x: (B, T, C)) -> (B, T, C)``, causal when ``config.causal``; rotary positions, when
  ``config.positions == "rotary"``, are the attention's job (use :class:`Rotary`). An attention with
  ``supports_cache = True`` also takes ``cache``: its own dict in a :class:`harness.models.model.KVCache`, where
  it keeps what it needs of the tokens already read (``x`` then holds only the new ones), so generation does not
  recompute the prefix; :meth:`SelfAttention.project` does this for Q, K and V. The rank probe reads
  an attention's ``effective_maps()`` when it defines one (the per-head QK logit and VO maps it applies), else
  ``q_proj``, ``k_proj``, ``v_proj``, ``o_proj`` (``nn.Linear``) and ``n_head``.
- ``ffn``: ``forward(x: (B, T, C)) -> (B, T, C)``.
- ``norm``: ``forward(x: (B, T, C)) -> (B, T, C)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.models.grouped_attention import grouped_attention, prefer_grouped


class Rotary(nn.Module):
    """Rotary position embedding (RoPE, "rotate half" layout) for queries and keys of one head size."""

    def __init__(self, head_dim: int, max_seq_len: int, base: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary positions need an even head size, got {head_dim}")
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2).float() / head_dim)  # (hs/2,)
        angles = torch.outer(torch.arange(max_seq_len).float(), inv_freq)  # (T_max, hs/2)
        angles = torch.cat([angles, angles], dim=-1)  # (T_max, hs)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Rotate ``x`` of shape (B, nh, T, hs) by its positions start..start+T-1."""
        T = x.size(-2)
        cos, sin = self.cos[start : start + T].to(x.dtype), self.sin[start : start + T].to(x.dtype)  # (T, hs)
        first, second = x.chunk(2, dim=-1)
        rotated = torch.cat([-second, first], dim=-1)
        return x * cos + rotated * sin


class SelfAttention(nn.Module):
    """Multi-head self-attention with separate Q, K, V, O projections and PyTorch's fused SDPA kernel.

    Separate projections (not one fused QKV matrix) keep W_Q, W_K, W_V, W_O readable for the rank probe.
    """

    supports_cache = True

    def __init__(self, config, layer_index: int = 0):
        super().__init__()
        if config.d_model % config.n_head:
            raise ValueError(f"d_model {config.d_model} is not divisible by n_head {config.n_head}")
        self.n_head = config.n_head
        self.head_dim = config.d_model // config.n_head
        self.causal = config.causal
        self.dropout = config.dropout
        d = config.d_model
        self.q_proj = nn.Linear(d, d, bias=config.bias)
        self.k_proj = nn.Linear(d, d, bias=config.bias)
        self.v_proj = nn.Linear(d, d, bias=config.bias)
        self.o_proj = nn.Linear(d, d, bias=config.bias)
        self.o_proj.residual_out = True  # scaled down at init (GPT-2), see Transformer.init_weights
        self.rotary = Rotary(self.head_dim, config.max_seq_len) if config.positions == "rotary" else None

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        return x.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, T, hs)

    def project(
        self, x: torch.Tensor, cache: dict | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """Queries of the new tokens and keys/values of every token read so far, each (B, nh, ., hs), and the
        position of the first new token (the number in ``cache`` before this call; it is updated in place)."""
        q, k, v = (self.split_heads(proj(x)) for proj in (self.q_proj, self.k_proj, self.v_proj))
        start = 0 if cache is None or "k" not in cache else cache["k"].size(2)
        if self.rotary is not None:
            q, k = self.rotary(q, start), self.rotary(k, start)
        if start:
            k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
        if cache is not None:
            cache["k"], cache["v"] = k, v
        return q, k, v, start

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v, start = self.project(x, cache)
        dropout = self.dropout if self.training else 0.0
        if not start and prefer_grouped(q, dropout):
            y = grouped_attention(q, k, v, self.causal)  # (B, nh, T, hs)
        elif not start:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, dropout_p=dropout)
        else:  # after cached tokens a causal mask is offset by their number (SDPA's is_causal is not)
            mask = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(start) if self.causal else None
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.o_proj(y)


class MLPBlock(nn.Module):
    """Position-wise FFN: Linear(d, d_ff) -> activation -> Linear(d_ff, d)."""

    def __init__(self, config, activation):
        super().__init__()
        self.up = nn.Linear(config.d_model, config.d_ff, bias=config.bias)
        self.down = nn.Linear(config.d_ff, config.d_model, bias=config.bias)
        self.down.residual_out = True
        self.activation = activation
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.down(self.activation(self.up(x))))


class SwiGLU(nn.Module):
    """Gated FFN of Llama/Mistral: down(silu(gate(x)) * up(x)), gate and up two matrices as there.

    Fused, their (B, T, 2 d_ff) output reached 32 MiB at the training benchmark's shape, and glibc serves a block
    that large by a fresh mmap (page faults at every step) unless told to keep freed memory (as the Trainer does:
    harness.training.keep_freed_memory); the fusion saved less than that cost.
    """

    def __init__(self, config, layer_index: int = 0):
        super().__init__()
        self.gate = nn.Linear(config.d_model, config.d_ff, bias=config.bias)
        self.up = nn.Linear(config.d_model, config.d_ff, bias=config.bias)
        self.down = nn.Linear(config.d_ff, config.d_model, bias=config.bias)
        self.down.residual_out = True
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.down(F.silu(self.gate(x)) * self.up(x)))


def sdpa_attention(config, layer_index: int) -> nn.Module:
    return SelfAttention(config, layer_index)


def gelu_ffn(config, layer_index: int) -> nn.Module:
    return MLPBlock(config, nn.GELU(approximate="tanh"))


def relu_ffn(config, layer_index: int) -> nn.Module:
    return MLPBlock(config, nn.ReLU())


def swiglu_ffn(config, layer_index: int) -> nn.Module:
    return SwiGLU(config, layer_index)


def layernorm(config, layer_index: int) -> nn.Module:
    return nn.LayerNorm(config.d_model, bias=config.bias)


def rmsnorm(config, layer_index: int) -> nn.Module:
    return nn.RMSNorm(config.d_model, eps=1e-6)
