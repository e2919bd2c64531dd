"""The teacher matrix and the network's training (full-batch gradient descent through the shared Trainer)."""

from __future__ import annotations

import numpy as np
import torch
from harness.plugins.linear_resnet.model import DeepLinearResNet
from harness.plugins.linear_resnet.theory import residual_gain

from harness.training import TrainConfig

EVAL_POINTS = 60  # singular-value snapshots over training


def teacher(dim: int, rank: int, signal: float, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """M* = U diag(s) V^T with s_i = signal (rank - i) / rank, and Y = M* + noise; float64, (dim, dim) each."""
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(dim, rank, generator=g, dtype=torch.float64))  # (dim, r) orthonormal
    v, _ = torch.linalg.qr(torch.randn(dim, rank, generator=g, dtype=torch.float64))
    s = signal * torch.arange(rank, 0, -1, dtype=torch.float64) / rank
    target = u @ torch.diag(s) @ v.T
    return target, target + noise * torch.randn(dim, dim, generator=g, dtype=torch.float64)


def step_size(y: np.ndarray, depth: int, lam: float, mu: float) -> float:
    """1 / the Hessian's largest eigenvalue at the min-norm solution, estimated for the top direction (s, gain G):
    s G for its A and B entries, L s^2 for the L residual layers moving together, mu lambda L for their cost."""
    gain = float(residual_gain(y[0], depth, lam)[0]) if depth else 1.0
    return 1.0 / (y[0] * gain + depth * y[0] ** 2 + mu * lam * depth)


def fit_network(
    ctx, observed: torch.Tensor, y: np.ndarray, depth: int, lam: float, mu: float, steps: int, lr: float, init: float
) -> tuple[torch.Tensor, dict]:
    """Train the ResNet on 1/2 ||M - Y||^2 + mu/2 cost; returns the end-to-end matrix and the sv history."""
    dim = observed.shape[0]
    torch.manual_seed(ctx.seed_for("init"))
    model = DeepLinearResNet(dim, dim, dim, depth, init=init).double()
    history = {"step": [], "sv": [], "loss": []}

    def loss_fn(model, batch):
        return 0.5 * (model.end_to_end() - batch["target"]).square().sum() + 0.5 * mu * model.cost(lam)

    @torch.no_grad()
    def evaluate(model, step):
        sv = torch.linalg.svdvals(model.end_to_end())
        history["step"].append(step)
        history["sv"].append(sv.tolist())
        history["loss"].append(float(loss_fn(model, {"target": observed})))
        return {"objective": history["loss"][-1], **{f"sv{i}": float(s) for i, s in enumerate(sv[:8])}}

    config = TrainConfig(
        steps=steps,
        batch_size=1,
        lr=lr or step_size(y, depth, lam, mu),
        optimizer="sgd",
        momentum=0.0,
        schedule="constant",
        grad_clip=0.0,
        seed=ctx.seed_for("train") % 2**31,
        eval_every=max(1, steps // EVAL_POINTS),
        log_every=max(1, steps // EVAL_POINTS),
    )
    trainer = ctx.trainer(
        model, config, lambda step, g: {"target": observed}, loss_fn=loss_fn, evaluate=evaluate, progress=False
    )
    trainer.fit()
    with torch.no_grad():
        return model.end_to_end(), history
