"""The worst case of the bound: a model whose alpha needed grows like T over the whole window (``target=tight``).

arXiv 2305.13141 bounds the gap between the scaled model and its linearisation by O(T / alpha) (for a given
Lipschitz constant of the Jacobian Dh and a given initial loss R0) and calls the bound tight. Its text is not in
this tree, so this construction is ours, built from where the bound is attained; it may differ from the paper's
own example. One direction of parameter space:

    h(w) = a w + (b / 2) w^2,  target y,  kernel eigenvalue lambda = a^2 (per training output, / n below)

Both models fit y, so the gap vanishes at convergence; on the way there, in the time s = lambda t of that
direction, the scaled gap is exactly, to first order in 1 / alpha,

    g(s) = (2 b y^2 / (alpha a^2)) phi(s),   phi(s) = e^-s (s - 1 + e^-s),   max phi = 0.162 at s = 1.59,

so a direction of eigenvalue lambda ~ 1 / T contributes a gap ~ b y^2 T / alpha by time T, at fixed curvature b
(= Lip(Dh)) and fixed loss y^2 / 2: the T / alpha of the bound, where a fast direction (lambda >> 1 / T) caps at
b y^2 / (alpha lambda) and a slow one (lambda << 1 / T) has only reached its Taylor regime g ~ b y^2 lambda T^2 / alpha.
One model that is the worst case at every T of the window: K such directions side by side (a diagonal model,
h(w)_k = a_k w_k + (b / 2) w_k^2), one output each, with eigenvalues spread evenly in log over [spectrum_min, 1].

Choices:
- The K outputs are the "inputs" x = the K one-hot vectors, so h(w, x) = (a w + (b/2) w^2) . x and the task's
  training loop (lazy.train_side_by_side: mean square loss over the n = K outputs, GD in kernel time, sup over t of
  the RMS gap) runs it unchanged. The gap is measured on the same K outputs (the function space of the bound is
  the outputs; there is nothing held out), so "held-out" in the metrics means these outputs here.
- a_k = sqrt(n mu_k): the empirical NTK Dh Dh^T / n at init is diag(mu_k), kernel time is in units of 1 / max mu.
- A seed draws mu_k = spectrum_min^((k + u_k) / K) (u_k uniform: one eigenvalue in each of K equal log-cells) and
  the labels y_k ~ N(0, 1), so seeds differ in where the eigenvalues sit and how much loss each direction carries.
- spectrum_min (default 1e-4) lies a decade below 1 / horizon, so the window [t_min, horizon] sees no edge of the
  spectrum; past T ~ 1 / spectrum_min the gap stops growing (every direction has converged).
- w0 = 0, so h(w0) = 0 and the centring of lazy.py changes nothing.
"""

from __future__ import annotations

import math

import torch


def phi(s: float) -> float:
    """The shape of one direction's gap against its own time s = lambda t: e^-s (s - 1 + e^-s)."""
    return math.exp(-s) * (s - 1 + math.exp(-s))


def make_tight_problem(config, generator: torch.Generator) -> dict:
    """The diagonal quadratic model in the form of ``lazy.make_problem``'s problem (K = ``config.n_train``)."""
    K = config.n_train
    cells = torch.arange(K, dtype=torch.float64) + torch.rand(K, generator=generator, dtype=torch.float64)
    mu = config.spectrum_min ** (cells / K)  # (K,) kernel eigenvalues, one per log-cell of [spectrum_min, 1]
    y_k = torch.randint(0, 2, (K,), generator=generator).double() * 2 - 1  # random signs, |y_k| = 1
    a = (K * mu).sqrt()
    b = config.curvature
    eye = torch.eye(K, dtype=torch.float64)
    x = torch.cat([eye, eye])  # the K outputs, as training inputs and again as the inputs the gap is read on

    def forward(w: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """(A, K) or (K,) parameters, (N, K) one-hot inputs -> (A, N) or (N,) outputs."""
        return (a * w + 0.5 * b * w**2) @ inputs.T

    return {
        "x": x,
        "y": torch.cat([y_k, y_k]),
        "w0": torch.zeros(K, dtype=torch.float64),
        "jacobian": x * a,  # Dh(w0) = diag(a) on each output
        "lambda_max": mu.max().item(),
        "h": forward,
        "forward": forward,
        "eigenvalues": mu,
        "curvature": b,
    }
