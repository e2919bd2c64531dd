"""The models of the relational experiments: the harness Transformer set up as in the paper, and the MLP baseline.

Regression: a CLS token is appended at the end of the template and the regression head reads that position (the
harness Transformer reads the last position, so appending the token is all it takes). Next-token: tied
embedding/unembedding, logits over the whole vocabulary read at the template's last position. Both: pre-LN blocks,
GELU MLP, learned positions, no biases (the paper's attention has none), and bidirectional attention (the reference
model has no causal mask). The readout LayerNorm keeps its gain, where the reference's has none.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from harness.plugins.relational.task import BASELINE
from torch import nn

from harness.models import ModelConfig, build_model


@dataclass
class ModelSpec:
    """What to train; ``attention`` is a registered attention component or ``mlp`` (the baseline)."""

    attention: str = "sdpa"  # sdpa | identity (a_h, b_h per head) | mlp (no transformer at all)
    d_model: int = 64  # embedding dimension (the x-axis of the inverse scaling law)
    n_layer: int = 2  # transformer blocks; the MLP baseline has n_layer hidden layers
    n_head: int = 4  # attention heads per block
    freeze_embeddings: bool = False  # keep the token embeddings (tied: also the unembeddings) at their random init


class OneHotMLP(nn.Module):
    """The baseline: an MLP on the concatenated one-hot vectors of the tokens (ReLU, ``depth`` hidden layers).

    The first layer on a concatenation of one-hots is a sum of one embedding row per position, so it is stored as
    an embedding table of (length x vocab) rows: the same function and gradients without the huge one-hot input.
    """

    def __init__(self, vocab_size: int, length: int, width: int, depth: int, n_outputs: int):
        super().__init__()
        self.vocab_size, self.length = vocab_size, length
        self.first = nn.Embedding(length * vocab_size, width)
        self.first_bias = nn.Parameter(torch.zeros(width))
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth - 1))
        self.out = nn.Linear(width, n_outputs)
        bound = (1.0 / length) ** 0.5  # Linear's default init for fan-in = length one-hots with one 1 each
        nn.init.uniform_(self.first.weight, -bound, bound)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        offsets = torch.arange(self.length, device=input_ids.device) * self.vocab_size  # (T,)
        x = self.first(input_ids + offsets).sum(dim=1) + self.first_bias  # (B, width)
        for layer in self.hidden:
            x = layer(F.relu(x))
        return self.out(F.relu(x))  # (B, n_outputs)


def build(spec: ModelSpec, setting: str, vocab_size: int, length: int) -> nn.Module:
    """The model for inputs of ``length`` tokens (the CLS token included) over ``vocab_size`` ids."""
    n_outputs = 1 if setting == "regression" else vocab_size
    if spec.attention == BASELINE:
        return OneHotMLP(vocab_size, length, 4 * spec.d_model, spec.n_layer, n_outputs)
    config = ModelConfig(
        vocab_size=vocab_size,
        n_layer=spec.n_layer,
        n_head=spec.n_head,
        d_model=spec.d_model,
        max_seq_len=length,
        positions="learned",
        attention=spec.attention,
        ffn="gelu",
        norm="layernorm",
        head="regression" if setting == "regression" else "lm",
        n_outputs=1,
        tie_embeddings=setting == "next_token",
        bias=False,
        causal=False,
    )
    model = build_model(config)
    with torch.no_grad():  # N(0, 1) token and position embeddings, as the reference code's defaults
        model.tok_emb.weight.normal_(0.0, 1.0)
        model.pos_emb.weight.normal_(0.0, 1.0)
    model.tok_emb.weight.requires_grad_(not spec.freeze_embeddings)
    return model


def outputs(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """(B, 1) regression values or (B, V) next-token logits, whatever the model."""
    out = model(input_ids)
    return out[:, -1] if out.dim() == 3 else out  # lm head: (B, T, V) -> the last position


def loss(model: nn.Module, input_ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """MSE for float targets (regression), cross-entropy for token-id targets (next_token)."""
    out = outputs(model, input_ids).float()
    if targets.dtype.is_floating_point:
        return F.mse_loss(out.squeeze(-1), targets)
    return F.cross_entropy(out, targets)
