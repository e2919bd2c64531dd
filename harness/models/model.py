"""A decoder-only transformer written for reading: config, block, model, built from registered parts.

Pre-LN blocks ``x + attn(norm(x))`` then ``x + ffn(norm(x))``; learned or rotary positions; optional tied
embeddings; an ``lm`` head (next-token logits) or a ``cls``/``regression`` head read from the last position.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import UsageError

HEADS = ("lm", "cls", "regression")
POSITIONS = ("learned", "rotary", "sinusoidal")


@dataclass
class ModelConfig:
    """Everything that defines a model's shape; saved with every checkpoint."""

    vocab_size: int = 256  # number of token ids
    n_layer: int = 2  # transformer blocks
    n_head: int = 4  # attention heads per block
    d_model: int = 128  # residual stream width
    d_ff: int | None = None  # FFN hidden width; None means 4 * d_model
    max_seq_len: int = 256  # longest input; sizes the learned position table and the rotary cache
    positions: str = "learned"  # "learned" (added table), "rotary" (RoPE inside attention) or "sinusoidal" (fixed)
    attention: str = "sdpa"  # component name, looked up as "attention:<name>"
    ffn: str = "gelu"  # component name, looked up as "ffn:<name>"
    norm: str = "layernorm"  # component name, looked up as "norm:<name>"
    tie_embeddings: bool = False  # lm head shares the token embedding matrix
    head: str = "lm"  # "lm" (B, T, V) logits; "cls" (B, n_outputs) logits; "regression" (B, n_outputs) values
    n_outputs: int = 1  # classes (cls) or output values (regression); unused for lm
    dropout: float = 0.0  # dropout on embeddings, attention weights and FFN output
    init_scale: float = 1.0  # every weight matrix is multiplied by this after init (small-init experiments)
    bias: bool = True  # biases in linear layers and LayerNorm
    causal: bool = True  # causal attention mask; False lets cls/regression models attend both ways
    options: dict = field(default_factory=dict)  # free settings for plugin components (e.g. n_experts, top_k)

    def __post_init__(self):
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model
        if self.positions not in POSITIONS:
            raise UsageError(f"positions '{self.positions}': choose one of {', '.join(POSITIONS)}")
        if self.head not in HEADS:
            raise UsageError(f"head '{self.head}': choose one of {', '.join(HEADS)}")
        if self.d_model % self.n_head:
            raise UsageError(f"d_model {self.d_model} must be divisible by n_head {self.n_head}")

    def to_dict(self) -> dict:
        return asdict(self)


def component(kind: str, name: str, config: ModelConfig, layer_index: int) -> nn.Module:
    """Build the registered part ``kind:name`` (UsageError with did-you-mean when it is not registered)."""
    from harness.registry import get_plugins

    entry = get_plugins().registry("components").get(f"{kind}:{name}")
    return entry.factory(config, layer_index)


class Block(nn.Module):
    """One pre-LN transformer block."""

    def __init__(self, config: ModelConfig, layer_index: int):
        super().__init__()
        self.norm1 = component("norm", config.norm, config, layer_index)
        self.attn = component("attention", config.attention, config, layer_index)
        self.norm2 = component("norm", config.norm, config, layer_index)
        self.ffn = component("ffn", config.ffn, config, layer_index)

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        h = self.norm1(x)
        x = x + (self.attn(h) if cache is None else self.attn(h, cache=cache))  # an attention may take no cache
        return x + self.ffn(self.norm2(x))


class KVCache:
    """What a model has read of a batch (each layer's attention keeps its own dict: keys, values, ...), so that
    generating a token reads only that token instead of the whole sequence again."""

    def __init__(self, n_layer: int):
        self.length = 0  # tokens read
        self.layers: list[dict] = [{} for _ in range(n_layer)]


def sinusoids(length: int, width: int) -> torch.Tensor:
    """Fixed positions (Vaswani et al.): sin/cos at geometric frequencies, (length, width), scaled to the RMS of the
    learned table at init (0.02) so tokens are not drowned out. The fastest pair, cos(pi t) = (-1)^t, is an exact
    parity feature, and every offset is a fixed rotation: the previous-token and pair-parity lookups a learned
    table must learn position by position come for free."""
    t = torch.arange(length, dtype=torch.float32)[:, None]  # (T, 1)
    rates = torch.pi * torch.pow(10000.0, -torch.arange(0, width, 2, dtype=torch.float32) / width)  # (C/2,)
    table = torch.zeros(length, width)
    table[:, 0::2], table[:, 1::2] = torch.sin(t * rates), torch.cos(t * rates)
    return table * 0.02 * math.sqrt(2)


class Transformer(nn.Module):
    """Token ids (B, T) -> logits (B, T, V) for ``head="lm"``, or (B, n_outputs) for cls/regression."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.pos_emb = nn.Embedding(config.max_seq_len, config.d_model) if config.positions == "learned" else None
        if config.positions == "sinusoidal":
            self.register_buffer("pos_table", sinusoids(config.max_seq_len, config.d_model), persistent=False)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.norm_f = component("norm", config.norm, config, config.n_layer)
        n_out = config.vocab_size if config.head == "lm" else config.n_outputs
        self.head = nn.Linear(config.d_model, n_out, bias=False)
        self.init_weights()
        if config.tie_embeddings:
            if config.head != "lm":
                raise UsageError("tie_embeddings needs head='lm'")
            self.head.weight = self.tok_emb.weight

    def init_weights(self) -> None:
        """GPT-2 init (N(0, 0.02), residual outputs / sqrt(2 n_layer)), then every matrix times init_scale.

        A part with its own ``init_weights(config)`` method (a plugin's) re-initialises itself afterwards.
        """
        std = 0.02
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                scale = std / math.sqrt(2 * self.config.n_layer) if getattr(module, "residual_out", False) else std
                nn.init.normal_(module.weight, mean=0.0, std=scale)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        for module in self.modules():
            if module is not self and hasattr(module, "init_weights"):
                module.init_weights(self.config)
        with torch.no_grad():
            for param in self.parameters():
                if param.dim() >= 2:
                    param.mul_(self.config.init_scale)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings (B, T, C), without positions (the white-box surface works on these)."""
        return self.tok_emb(input_ids)

    @property
    def supports_cache(self) -> bool:
        """Whether ``forward(..., cache=KVCache)`` works: every block's attention keeps a cache."""
        return self.config.causal and all(getattr(block.attn, "supports_cache", False) for block in self.blocks)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ):
        """Logits of the tokens given; with ``cache`` (a :class:`KVCache` of this batch) they follow the
        ``cache.length`` tokens read before, and are added to it."""
        x = self.embed(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, C)
        start = 0 if cache is None else cache.length
        end = start + x.size(1)
        if end > self.config.max_seq_len:
            raise ValueError(f"sequence of {end} tokens is longer than max_seq_len {self.config.max_seq_len}")
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(start, end, device=x.device))  # (T, C) broadcast over B
        elif self.config.positions == "sinusoidal":
            x = x + self.pos_table[start:end].to(x.dtype)
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, None if cache is None else cache.layers[i])
        if cache is not None:
            cache.length = end
        x = self.norm_f(x)  # (B, T, C)
        if self.config.head != "lm":
            x = x[:, -1]  # (B, C): the last position has seen the whole sequence
        return self.head(x)

    def loss(self, input_ids: torch.Tensor, targets: torch.Tensor, loss_mask: torch.Tensor | None = None):
        """Mean loss: cross-entropy over positions where ``loss_mask`` is 1 (lm), over examples (cls), or MSE.

        Targets equal to -100 are ignored too (lm, cls).
        """
        out = self(input_ids).float()
        if self.config.head == "regression":
            return F.mse_loss(out, targets.float().view_as(out))
        if self.config.head == "cls":
            return F.cross_entropy(out, targets)
        losses = F.cross_entropy(out.flatten(0, 1), targets.flatten(), reduction="none")  # (B*T,)
        weights = (targets.flatten() != -100).float()
        if loss_mask is not None:
            weights = weights * loss_mask.flatten().float()
        return (losses * weights).sum() / weights.sum().clamp(min=1.0)

    def num_params(self, non_embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.tok_emb.weight.numel() + (self.pos_emb.weight.numel() if self.pos_emb is not None else 0)
        return n


def build_model(config: ModelConfig) -> Transformer:
    """The transformer described by ``config``, its parts looked up in the components registry."""
    return Transformer(config)
