"""The ``linear_resnet`` task: fit a noisy low-rank matrix with a regularised deep linear ResNet (arXiv 2501.19149).

Setting (full observation, our choice: it has a closed form to hold the trained network against). The teacher is
M* = sum_i s_i u_i v_i^T of rank r (s_i = signal (r - i) / r), observed as Y = M* + noise N(0, noise^2) per entry.
The network minimises 1/2 ||M(theta) - Y||_F^2 + (mu / 2) (||A||^2 + ||B||^2 + lambda L sum_l ||W_l||^2) by plain
full-batch gradient descent (the shared Trainer: sgd, momentum 0, constant lr, no clipping), from A, B random and
W_l = 0. A regression on whitened inputs (X^T X = n I) reduces to the same problem.

Beside the trained end-to-end matrix, the run computes the closed forms on Y's singular values (theory.py): the
ResNet's min-norm shrinkage for this (L, lambda, mu), the nuclear-norm minimiser (soft threshold at mu: what depth
0 or lambda -> infinity gives) and the rank-constrained fit (Y truncated to rank r). ``shrinkage`` says where the
solution lands between them: the mean over kept singular values of (y - s) / mu, 1 for the nuclear norm, 0 for a
rank penalty (kept values unshrunk).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from harness.errors import UsageError
from harness.options import Options, option, takes

RANK_TOL = 1e-3  # a singular value counts towards the effective rank above RANK_TOL * ||Y||_2


@dataclass(frozen=True)
class LinearResNetOptions(Options):
    """The teacher and its noise, the network's costs, and plain gradient descent."""

    dim: int = option(16, "the matrix is dim x dim, and so is the network's width", ge=1)
    rank: int = option(3, "rank r of the teacher M*", ge=1)
    signal: float = option(
        6.0, "the teacher's largest singular value (the others step down linearly to signal / r)", gt=0
    )
    noise: float = option(0.2, "standard deviation of the noise added to each observed entry", ge=0)
    depth: int = option(8, "residual layers L (0: the plain factorisation B A, whose bias is the nuclear norm)", ge=0)
    lam: float = option(0.1, "lambda, the weight of the residual layers' cost", gt=0)
    mu: float = option(
        1.5, "weight of the whole cost against the squared error (the nuclear norm's soft threshold)", gt=0
    )
    steps: int = option(6000, "gradient-descent steps", ge=1)
    lr: float = option(0.0, "step size; 0 picks one from the min-norm solution's largest gain", ge=0)
    init: float = option(1.0, "scale of the random A and B (entries N(0, init^2 / dim))", gt=0)

    def check(self) -> None:
        if self.rank > self.dim:
            raise UsageError(f"rank={self.rank} is larger than dim={self.dim}: choose rank <= dim")


@takes(LinearResNetOptions)
class LinearResNetTask:
    """Singular-value shrinkage of a deep linear ResNet against the nuclear-norm and rank-constrained fits."""

    name = "linear_resnet"
    threads = 1  # torch threads the run sets: small problems, so a sweep runs its points side by side
    version = "1"
    primary_metric = "effective_rank"

    def __init__(self, options: LinearResNetOptions):
        self.options = options

    @staticmethod
    def sweep_summary(points: list[dict], ctx) -> dict[str, float]:
        """Shrinkage curves of every lambda on one figure per depth (see plots.sweep_summary)."""
        from harness.plugins.linear_resnet.plots import sweep_summary

        return sweep_summary(points, ctx)

    def run(self, ctx) -> dict[str, float]:
        import torch
        from harness.plugins.linear_resnet.experiment import fit_network, teacher

        o = self.options
        target, observed = teacher(o.dim, o.rank, o.signal, o.noise, seed=ctx.seed_for("teacher"))
        y = torch.linalg.svdvals(observed).numpy()
        fitted, history = fit_network(ctx, observed, y, o.depth, o.lam, o.mu, o.steps, o.lr, o.init)
        spectra = self.spectra(y, fitted)
        metrics = self.metrics(spectra, history, target, observed, fitted)
        ctx.path("spectra.json").write_text(json.dumps({k: list(map(float, v)) for k, v in spectra.items()}))
        from harness.plugins.linear_resnet.plots import plot_run

        plot_run(ctx, spectra, history, self.options)
        return metrics

    def spectra(self, y: np.ndarray, fitted) -> dict[str, np.ndarray]:
        """Observed, trained and closed-form singular values (descending)."""
        import torch
        from harness.plugins.linear_resnet.theory import resnet_shrinkage, soft_threshold, truncate

        return {
            "observed": y,
            "trained": torch.linalg.svdvals(fitted).numpy(),
            "resnet": resnet_shrinkage(y, self.options.mu, self.options.depth, self.options.lam),
            "nuclear": soft_threshold(y, self.options.mu),
            "rank_constrained": truncate(y, self.options.rank),
        }

    def metrics(self, spectra: dict, history: dict, target, observed, fitted) -> dict[str, float]:
        import torch
        from harness.plugins.linear_resnet.theory import effective_rank, objective

        y, mu = spectra["observed"], self.options.mu
        tol = RANK_TOL * y[0]
        out = {}
        for name in ("trained", "resnet", "nuclear", "rank_constrained"):
            s = spectra[name]
            prefix = "" if name == "trained" else f"{name}_"
            out[f"{prefix}effective_rank"] = float(effective_rank(s, tol))
            out[f"{prefix}nuclear_norm"] = float(s.sum())
            kept = s > tol
            out[f"{prefix}shrinkage"] = float(((y - s)[kept] / mu).mean()) if kept.any() else 1.0
        out["theory_gap"] = float(np.abs(spectra["trained"] - spectra["resnet"]).max() / y[0])
        out["objective"] = float(history["loss"][-1])
        out["resnet_objective"] = objective(y, spectra["resnet"], mu, self.options.depth, self.options.lam)
        out["error"] = float(torch.linalg.norm(fitted - target) / torch.linalg.norm(target))
        u, _, vh = torch.linalg.svd(observed)
        for name in ("nuclear", "rank_constrained"):  # same singular vectors as Y, closed-form values
            estimate = u @ torch.diag(torch.as_tensor(spectra[name], dtype=u.dtype)) @ vh
            out[f"{name}_error"] = float(torch.linalg.norm(estimate - target) / torch.linalg.norm(target))
        out["noise_edge"] = float(self.options.noise * 2 * math.sqrt(self.options.dim))
        return out
