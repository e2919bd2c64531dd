"""The ``fact`` probe (Features at Convergence Theorem, arXiv 2507.05644).

At a stationary point of L(theta) + (lambda/2)||theta||^2, with L = (1/n) sum_i loss_i, every linear layer W
(y = W h, PyTorch weight of shape (out, in)) satisfies

    W^T W = -(1/(n lambda)) sum_i (W^T g_i) h_i^T,      g_i = d loss_i / d(W h_i).

The trainer captures each layer's inputs h_i and the gradient of the loss it minimises with respect to the
layer's output. For the usual mean loss that captured gradient is g_i / n, so the right-hand side is computed
as -(1/lambda) W^T sum_i G_i h_i^T with G the captured gradient — no extra 1/n (it is already in G). Every row
of a (B, T, d) input is one i (a token position of a sequence model). This equals -(1/lambda) W^T grad_W L.

Logged per layer: ``fact/<layer>/corr`` — the Pearson correlation of the flattened matrices W^T W and the
right-hand side, as in the paper; ``fact/<layer>/cos`` — their cosine similarity (uncentred); and
``fact/<layer>/residual`` — ||lhs - rhs||_F / ||lhs||_F, which also checks the scale (nan without weight
decay).

lambda is the probe's ``weight_decay`` when given, else the trainer's ``config.weight_decay`` (read in
``start``).

The theorem's setting: a stationary point of the full-batch objective L + (lambda/2)||theta||^2, reached by
plain gradient descent with L2 in the gradient (``optimizer=sgd``, ``momentum=0``, ``weight_decay>0``), no
gradient clipping, the same full batch at every step, trained until the gradient is ~0. AdamW's decoupled decay
reaches a different stationary point, clipping and momentum change the dynamics, and fresh minibatches leave
a gradient that is zero only on average; the reading then means little. When the probe runs in a Trainer it
logs ``fact/setting``: 1.0 when the optimizer settings fit (SGD, no momentum, no clipping, lambda > 0), 0.0
otherwise. It cannot see whether every batch is the whole training set: that is the caller's part. The
``fact_mlp`` task (plugins/fact) trains in exactly this setting to a gradient-norm threshold.
"""

from __future__ import annotations

import torch

from harness.errors import UsageError


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a @ b) / (a.norm() * b.norm()).clamp(min=1e-300))


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    return float((a @ b) / (a.norm() * b.norm()).clamp(min=1e-300))


def in_theorem_setting(config) -> bool:
    """Whether a TrainConfig runs plain GD with L2 weight decay (full batches are the caller's part)."""
    return config.optimizer == "sgd" and not config.momentum and not config.grad_clip and config.weight_decay > 0


class FactProbe:
    """Per-layer agreement of W^T W with the FACT right-hand side (see module docstring)."""

    name = "fact"

    def __init__(self, weight_decay: float | None = None, layer_names: list[str] | None = None):
        self.weight_decay = weight_decay
        self.layer_names = layer_names
        self.setting: bool | None = None  # in the theorem's setting? known once start() saw the trainer

    def start(self, model, trainer=None) -> None:
        self.setting = None
        if trainer is not None:
            if self.weight_decay is None:
                self.weight_decay = trainer.config.weight_decay
            self.setting = in_theorem_setting(trainer.config)

    def layers(self, model) -> list[str]:
        """Every ``nn.Linear`` (or the names given), except a head tied to the embedding matrix."""
        if self.layer_names:
            return list(self.layer_names)
        embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
        return [
            name
            for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and id(m.weight) not in embeddings
        ]

    @torch.no_grad()
    def layer_values(self, weight: torch.Tensor, inputs: torch.Tensor, grads: torch.Tensor) -> dict[str, float]:
        W = weight.float()  # (out, in)
        H = inputs.reshape(-1, W.shape[1])  # (n, in)
        G = grads.reshape(-1, W.shape[0])  # (n, out), gradient of the mean loss: g_i / n
        lam = self.weight_decay or 0.0
        lhs = W.T @ W  # (in, in)
        rhs = -(W.T @ (G.T @ H)) / (lam if lam > 0 else 1.0)  # (in, in)
        residual = float((lhs - rhs).norm() / lhs.norm().clamp(min=1e-30)) if lam > 0 else float("nan")
        return {"corr": correlation(lhs, rhs), "cos": cosine(lhs, rhs), "residual": residual}

    def __call__(self, step, model, batch, captures) -> dict[str, float]:
        if self.weight_decay is None:
            raise UsageError("the fact probe needs the weight decay: run it in the Trainer or pass weight_decay")
        modules = dict(model.named_modules())
        values = {}
        if self.setting is not None:
            values["fact/setting"] = float(self.setting)
        for name in self.layers(model):
            record = captures.get(name, {})
            if "inputs" not in record or "grad_outputs" not in record:
                continue  # the layer did not take part in this step's loss
            for stat, value in self.layer_values(
                modules[name].weight, record["inputs"], record["grad_outputs"]
            ).items():
                values[f"fact/{name}/{stat}"] = value
        return values
