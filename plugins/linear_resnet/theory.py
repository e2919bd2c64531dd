"""Closed forms for the regularised deep linear ResNet (arXiv 2501.19149), full-observation case.

The min-norm cost of representing an end-to-end matrix M by f = B (I + W_L) ... (I + W_1) A, with cost
||A||^2 + ||B||^2 + lambda L sum_l ||W_l||^2, splits over M's singular values s_i: R(M) = sum_i c(s_i). For one
singular value the optimum puts equal residual gains 1 + t/L on every layer and balances A and B, so

    c(s) = min_{t >= 0}  2 s g(t) + lambda t^2,    g(t) = (1 + t/L)^(-L)   (g = exp(-t) as L -> infinity),

our derivation of the paper's decomposition (its infinite-depth limit has t e^t = s / lambda, a Lambert-W). Small
s or large lambda give t ~ 0 and c(s) ~ 2 s: the nuclear norm (twice ||M||_*). Large s gives c(s) ~ lambda
log^2(s / lambda): a cost that barely grows with s, so small lambda counts singular values (rank). Depth 0 is the
plain factorisation f = B A, exactly 2 ||M||_*.

Fitting Y (all entries observed) with 1/2 ||M - Y||^2 + (mu / 2) R(M) acts on each singular value y of Y alone
(von Neumann: the optimum shares Y's singular vectors). For fixed t the best s is a soft threshold at mu g(t);
eliminating s leaves a 1-D problem in t, solved here on a dense grid with a parabolic refinement.
"""

from __future__ import annotations

import numpy as np

T_MAX = 60.0  # largest residual "log-gain" t searched; g(60) < 1e-26 makes anything larger irrelevant
GRID = 24001  # grid points in [0, T_MAX] (spacing 0.0025)


def gain_decay(t: np.ndarray, depth: int) -> np.ndarray:
    """g(t) = (1 + t/L)^(-L), the factor by which L residual layers of gain 1 + t/L shrink the A, B cost."""
    if depth == 0:
        return np.ones_like(t)
    if np.isinf(depth):
        return np.exp(-t)
    return (1.0 + t / depth) ** (-float(depth))


def _cost_grid(s: np.ndarray | float, depth: int, lam: float) -> tuple[np.ndarray, np.ndarray]:
    s = np.atleast_1d(np.asarray(s, dtype=float))
    t = np.linspace(0.0, T_MAX, GRID) if depth else np.zeros(1)
    return t, 2.0 * s[:, None] * gain_decay(t, depth)[None] + lam * t[None] ** 2  # (n_s, n_t)


def min_norm_cost(s: np.ndarray | float, depth: int, lam: float) -> np.ndarray:
    """c(s): the least cost of a network whose end-to-end map has the single singular value s."""
    return _cost_grid(s, depth, lam)[1].min(axis=1)


def residual_gain(s: np.ndarray | float, depth: int, lam: float) -> np.ndarray:
    """(1 + t/L)^L at the optimal t: how much the residual layers amplify singular value s in the min-norm net."""
    t, values = _cost_grid(s, depth, lam)
    return 1.0 / gain_decay(t[values.argmin(axis=1)], depth)


def resnet_shrinkage(y: np.ndarray | float, mu: float, depth: int, lam: float) -> np.ndarray:
    """argmin_s 1/2 (s - y)^2 + (mu/2) c(s) for each y >= 0: the ResNet's singular-value shrinkage."""
    y = np.atleast_1d(np.asarray(y, dtype=float))
    if depth == 0:
        return soft_threshold(y, mu)
    t = np.linspace(0.0, T_MAX, GRID)
    tau = mu * gain_decay(t, depth)  # (n_t,) soft threshold at gain t
    value = tau[None] * y[:, None] - 0.5 * tau[None] ** 2 + 0.5 * mu * lam * t[None] ** 2  # (n_y, n_t)
    value = np.where(tau[None] < y[:, None], value, np.inf)  # s = y - tau must stay positive
    best = value.argmin(axis=1)
    t_best = _refine(t, value, best)
    s = np.maximum(y - mu * gain_decay(t_best, depth), 0.0)
    keep = value[np.arange(len(y)), best] < 0.5 * y**2  # else s = 0 (cost y^2 / 2) wins
    return np.where(keep, s, 0.0)


def _refine(t: np.ndarray, value: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Vertex of the parabola through each row's grid minimum and its neighbours (interior points only)."""
    i = np.clip(best, 1, len(t) - 2)
    rows = np.arange(len(best))
    left, mid, right = value[rows, i - 1], value[rows, i], value[rows, i + 1]
    ok = np.isfinite(left) & np.isfinite(right) & (best == i)
    left, mid, right = np.where(ok, left, 0.0), np.where(ok, mid, 0.0), np.where(ok, right, 0.0)
    curvature = left - 2 * mid + right
    ok &= curvature > 0
    shift = np.where(ok, 0.5 * (left - right) / np.where(ok, curvature, 1.0), 0.0)
    return t[best] + shift * (t[1] - t[0])


def soft_threshold(y: np.ndarray, tau: float) -> np.ndarray:
    """Nuclear-norm proximal map on singular values: argmin 1/2 ||M - Y||^2 + tau ||M||_*."""
    return np.maximum(np.asarray(y, dtype=float) - tau, 0.0)


def truncate(y: np.ndarray, rank: int) -> np.ndarray:
    """Rank-constrained fit (Eckart-Young): keep the ``rank`` largest singular values, zero the rest."""
    y = np.sort(np.asarray(y, dtype=float))[::-1]
    return np.where(np.arange(len(y)) < rank, y, 0.0)


def objective(y: np.ndarray, s: np.ndarray, mu: float, depth: int, lam: float) -> float:
    """sum_i 1/2 (s_i - y_i)^2 + (mu/2) c(s_i): the full-observation objective at aligned singular values s."""
    y, s = np.asarray(y, dtype=float), np.asarray(s, dtype=float)
    cost = min_norm_cost(s, depth, lam) if depth else 2.0 * s
    return float((0.5 * (s - y) ** 2 + 0.5 * mu * cost).sum())


def effective_rank(singular_values: np.ndarray, tol: float) -> int:
    """Number of singular values above ``tol``."""
    return int((np.asarray(singular_values) > tol).sum())
