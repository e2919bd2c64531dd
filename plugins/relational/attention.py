"""Identity-augmented self-attention (Boix-Adsera et al., arXiv 2310.09753).

Each head h gets two trainable scalars, both 0 at init (unless ``ModelConfig.options`` sets
``identity_logit_init``), so the module starts as plain attention:

    logits_h = Q_h K_h^T / sqrt(d_h) + a_h X X^T        (W_Q W_K^T + a_h I)
    out      = sum_h softmax(logits_h) (V_h W_O^h + b_h X)  (W_V W_O + b_h I)

with X the block's normalised input (what this module receives). ``a_h`` lets a head attend to earlier
positions holding the same token without first learning W_Q W_K^T ~ I; ``b_h`` lets it copy what it found.
Attention weights are formed explicitly (not through the fused kernel) because the ``b_h`` term needs them;
the sequences these tasks use are short.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from harness.models.components import SelfAttention


class IdentityAttention(SelfAttention):
    supports_cache = True  # keeps X of the tokens read, beside their keys and values

    def __init__(self, config, layer_index: int = 0):
        super().__init__(config, layer_index)  # Q, K, V, O projections, heads and rotary as in plain attention
        # a_h; ``options["identity_logit_init"]`` starts it above 0 (graph_cot: a head that already matches tokens)
        self.identity_logit = nn.Parameter(
            torch.full((config.n_head,), float(config.options.get("identity_logit_init", 0.0)))
        )
        self.identity_value = nn.Parameter(torch.zeros(config.n_head))  # b_h

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v, start = self.project(x, cache)
        xs = torch.cat([cache["x"], x], dim=1) if start else x  # (B, S, C): every token read so far
        if cache is not None:
            cache["x"] = xs
        same = (x @ xs.transpose(1, 2)).unsqueeze(1)  # (B, 1, T, S): X X^T
        logits = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + self.identity_logit.view(1, -1, 1, 1) * same
        if self.causal:
            future = torch.ones(T, xs.size(1), dtype=torch.bool, device=x.device).triu(start + 1)
            logits = logits.masked_fill(future, float("-inf"))
        weights = logits.softmax(dim=-1)  # (B, nh, T, S)
        heads = (weights @ v).transpose(1, 2).reshape(B, T, C)
        copied = torch.einsum("h,bhts,bsc->btc", self.identity_value.to(x.dtype), weights, xs)
        return self.o_proj(heads) + copied
