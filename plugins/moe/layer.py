"""A mixture-of-experts layer: linear gate, top-k routing with a softmax over the k selected logits, experts that
are one-hidden-layer ReLU MLPs (arXiv 2505.06839).

Granularity is the number of active experts k. The layer is sized by ``active_hidden``, the number of hidden ReLU
units one input passes through, and each expert gets ``active_hidden // k`` of them. Experts have a hidden bias
and no output bias, so the expert parameters an input uses,
``k * width * (d_in + 1 + d_out) = active_hidden * (d_in + 1 + d_out)``, are the same for every k (an output bias
per expert would add ``k * d_out``). Only the gate, ``d_in * n_experts`` weights, grows with the total number of
experts; :func:`active_parameters` counts the two parts separately.

Routing is vectorised: the (input, expert) assignments are sorted by expert, packed into an (experts, capacity,
d_in) buffer, sent through every expert at once with two batched matmuls, and summed back per input with
``index_add``. No Python loop runs over experts or inputs; tests/moe compares it with a per-input loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import UsageError


@dataclass
class MoEConfig:
    d_in: int  # input width
    d_out: int  # output width
    n_experts: int = 8  # m: total experts
    top_k: int = 2  # k: active experts per input (the granularity)
    active_hidden: int = 64  # hidden ReLU units one input uses, split evenly over its k experts

    def __post_init__(self):
        if min(self.d_in, self.d_out, self.n_experts, self.top_k, self.active_hidden) < 1:
            raise UsageError(f"MoE sizes must be positive, got {self}")
        if self.top_k > self.n_experts:
            raise UsageError(f"top_k={self.top_k} is larger than n_experts={self.n_experts}: give top_k <= n_experts")
        if self.active_hidden % self.top_k:
            raise UsageError(
                f"active hidden units {self.active_hidden} are not divisible by top_k={self.top_k}: "
                "choose a multiple of top_k so every granularity has the same active width"
            )

    @property
    def expert_width(self) -> int:
        """Hidden units of one expert: the active budget split over the k experts an input uses."""
        return self.active_hidden // self.top_k


class MoE(nn.Module):
    """(..., d_in) -> (..., d_out): sum over the top-k experts of softmax(top-k gate logits) * expert(x)."""

    def __init__(self, config: MoEConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        m, d_in, width, d_out = config.n_experts, config.d_in, config.expert_width, config.d_out
        self.gate = nn.Linear(d_in, m, bias=False)
        self.w_in = nn.Parameter(torch.empty(m, d_in, width))  # expert e: x @ w_in[e] + b_in[e]
        self.b_in = nn.Parameter(torch.empty(m, width))
        self.w_out = nn.Parameter(torch.empty(m, width, d_out))
        self.reset_parameters(generator=generator)

    def reset_parameters(
        self,
        std_in: float | None = None,
        std_out: float | None = None,
        std_bias: float = 0.5,
        generator: torch.Generator | None = None,
    ) -> None:
        """Gate and first layer N(0, 1/d_in) (gate logits and pre-activations of unit scale for unit-variance
        inputs), hidden biases N(0, std_bias^2) (so the ReLU kinks do not all pass through 0), output
        N(0, 1/width)."""
        c = self.config
        std_in = std_in if std_in is not None else c.d_in**-0.5
        std_out = std_out if std_out is not None else c.expert_width**-0.5
        nn.init.normal_(self.gate.weight, std=std_in, generator=generator)
        nn.init.normal_(self.w_in, std=std_in, generator=generator)
        nn.init.normal_(self.b_in, std=std_bias, generator=generator)
        nn.init.normal_(self.w_out, std=std_out, generator=generator)

    def init_weights(self, model_config) -> None:
        """Inside a Transformer (called by its init_weights): GPT-2 scales, the output as a residual projection."""
        self.reset_parameters(std_in=0.02, std_out=0.02 / math.sqrt(2 * model_config.n_layer), std_bias=0.0)

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixing weights (N, k), softmax over the k largest gate logits, and the chosen experts (N, k)."""
        logits = self.gate(x)  # (N, m)
        top_logits, experts = logits.topk(self.config.top_k, dim=-1)  # (N, k)
        return top_logits.softmax(dim=-1), experts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        flat = x.reshape(-1, x.size(-1))  # (N, d_in)
        weights, experts = self.route(flat)
        out = self.mix(flat, weights, experts)  # (N, d_out)
        return out.reshape(*lead, self.config.d_out)

    def mix(self, x: torch.Tensor, weights: torch.Tensor, experts: torch.Tensor) -> torch.Tensor:
        """sum_j weights[n, j] * expert_{experts[n, j]}(x[n]) for every n, all experts in two batched matmuls."""
        N, k = experts.shape
        m = self.config.n_experts
        flat_experts = experts.reshape(-1)  # (N*k,) assignment a = n*k + j
        order = flat_experts.argsort(stable=True)  # assignments grouped by expert
        sorted_experts = flat_experts[order]  # (N*k,)
        tokens = order // k  # the input of each sorted assignment
        counts = torch.bincount(flat_experts, minlength=m)  # (m,)
        slots = torch.arange(N * k, device=x.device) - (counts.cumsum(0) - counts)[sorted_experts]  # place in its row
        capacity = int(counts.max())
        packed = x.new_zeros(m, capacity, x.size(-1)).index_put((sorted_experts, slots), x[tokens])  # (m, C, d_in)
        hidden = F.relu(torch.baddbmm(self.b_in.unsqueeze(1), packed, self.w_in))  # (m, C, width)
        outputs = torch.bmm(hidden, self.w_out)  # (m, C, d_out)
        weighted = outputs[sorted_experts, slots] * weights.reshape(-1)[order].unsqueeze(-1)  # (N*k, d_out)
        return x.new_zeros(N, self.config.d_out).index_add(0, tokens, weighted.to(x.dtype))


def active_parameters(layer: MoE) -> dict[str, int]:
    """Parameters one input uses: its k experts (constant across granularities) and the gate (grows with m)."""
    c = layer.config
    per_expert = layer.w_in[0].numel() + layer.b_in[0].numel() + layer.w_out[0].numel()
    return {"expert": c.top_k * per_expert, "gate": layer.gate.weight.numel()}


def moe_ffn(model_config, layer_index: int) -> MoE:
    """The ``ffn:moe`` component: d_model -> d_model, ``options`` n_experts (default 8) and top_k (default 2);
    the active hidden units are the transformer's d_ff, so changing top_k keeps the FFN's active size."""
    options = model_config.options
    try:
        n_experts, top_k = int(options.get("n_experts", 8)), int(options.get("top_k", 2))
    except (TypeError, ValueError):
        raise UsageError(f"ffn:moe options n_experts and top_k must be integers, got {options}") from None
    return MoE(MoEConfig(model_config.d_model, model_config.d_model, n_experts, top_k, model_config.d_ff))
