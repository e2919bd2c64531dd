"""Plain and residual MLPs for the probe experiments (FACT, linear ResNets, NTK).

Both take float inputs (B, d_in) and share the Trainer's default loss signature, so a batch
``{"input_ids": x, "targets": y}`` trains them without a custom ``loss_fn``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "identity": nn.Identity}


def _activation(name: str) -> nn.Module:
    from harness.errors import unknown

    if name not in ACTIVATIONS:
        raise unknown("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]()


def mean_loss(out: torch.Tensor, targets: torch.Tensor, loss_mask: torch.Tensor | None, task: str) -> torch.Tensor:
    """Mean over examples: cross-entropy for classification; for regression 1/2 * squared error summed over
    outputs (the 1/2 keeps the gradient equal to the residual, as in the FACT paper's square loss)."""
    if task == "classification":
        losses = F.cross_entropy(out.float(), targets, reduction="none")  # (B,)
    else:
        losses = 0.5 * (out.float() - targets.float().view_as(out)).pow(2).sum(-1)  # (B,)
    if loss_mask is None:
        return losses.mean()
    mask = loss_mask.float()
    return (losses * mask).sum() / mask.sum().clamp(min=1.0)


class MLP(nn.Module):
    """``depth`` linear layers (``layers.0`` ... ) with an activation between them."""

    def __init__(
        self,
        d_in: int,
        d_hidden: int,
        d_out: int,
        depth: int = 2,
        activation: str = "relu",
        bias: bool = False,
        init_scale: float = 1.0,
        task: str = "regression",
    ):
        super().__init__()
        self.init_args = dict(
            d_in=d_in,
            d_hidden=d_hidden,
            d_out=d_out,
            depth=depth,
            activation=activation,
            bias=bias,
            init_scale=init_scale,
            task=task,
        )
        self.task = task
        widths = [d_in] + [d_hidden] * (depth - 1) + [d_out]
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=bias) for a, b in zip(widths[:-1], widths[1:]))
        self.activation = _activation(activation)
        with torch.no_grad():
            for layer in self.layers:
                layer.weight.mul_(init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.activation(x)
        return x

    def loss(self, inputs, targets, loss_mask=None) -> torch.Tensor:
        return mean_loss(self(inputs), targets, loss_mask, self.task)


class ResidualMLP(nn.Module):
    """``in_proj`` -> ``depth`` residual blocks ``h + W2 act(W1 h)`` -> ``out_proj``.

    W1 and W2 of block i are the modules ``blocks.i.0`` and ``blocks.i.2``.
    """

    def __init__(
        self,
        d_in: int,
        d_model: int,
        d_out: int,
        depth: int = 2,
        d_hidden: int | None = None,
        activation: str = "relu",
        bias: bool = False,
        init_scale: float = 1.0,
        task: str = "regression",
    ):
        super().__init__()
        d_hidden = d_hidden or d_model
        self.init_args = dict(
            d_in=d_in,
            d_model=d_model,
            d_out=d_out,
            depth=depth,
            d_hidden=d_hidden,
            activation=activation,
            bias=bias,
            init_scale=init_scale,
            task=task,
        )
        self.task = task
        self.in_proj = nn.Linear(d_in, d_model, bias=bias)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Linear(d_model, d_hidden, bias=bias),
                _activation(activation),
                nn.Linear(d_hidden, d_model, bias=bias),
            )
            for _ in range(depth)
        )
        self.out_proj = nn.Linear(d_model, d_out, bias=bias)
        with torch.no_grad():
            for param in self.parameters():
                if param.dim() >= 2:
                    param.mul_(init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.in_proj(x)  # (B, d_model)
        for block in self.blocks:
            h = h + block(h)
        return self.out_proj(h)

    def loss(self, inputs, targets, loss_mask=None) -> torch.Tensor:
        return mean_loss(self(inputs), targets, loss_mask, self.task)
