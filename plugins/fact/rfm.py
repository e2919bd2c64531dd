"""Recursive Feature Machines with the FACT update (FACT-RFM) and the AGOP update (RFM), arXiv 2507.05644.

The predictor is kernel ridge regression with a learned feature matrix M = W^T W:

    K_M(x, x') = k(||x - x'||_M),   ||v||_M^2 = v^T M v,
    laplace:  k = exp(-||x - x'||_M / L),   gaussian:  k = exp(-||x - x'||_M^2 / (2 L^2)),
    f(x) = sum_j alpha_j K_M(x, x_j),   alpha = (K + ridge I)^{-1} Y   (Y: (n, c), one column per output).

Each iteration fits alpha exactly (``torch.linalg.solve`` in float64) and replaces M by a matrix computed from the
fitted predictor: ``fact``: M <- (F F^T)^{1/2}; ``fact_geo``: M <- (F M^2 F^T)^{1/4} (the paper's geometric-mean
variant); ``agop``: M <- AGOP (ordinary RFM); ``agop_sqrt``: M <- AGOP^{1/2}.

The FACT of a kernel predictor, with its constant (derived here; the paper states it up to a constant).
View f as an infinitely wide two-layer net f(x) = <a, phi(W x)> with k(Wx, Wx') = <phi(Wx), phi(Wx')>, trained on
(1/n) sum_i l_i + (lambda/2)(||a||^2 + ||W||^2) with l_i = 1/2 ||f(x_i) - y_i||^2 and residuals r_i = f(x_i) - y_i.
Stationarity in a gives a = -(1/(n lambda)) sum_i r_i phi(W x_i), i.e. f(x) = sum_i alpha_i K_M(x, x_i) with
alpha_i = -r_i / (n lambda), which is kernel ridge regression with ridge = n lambda. The layer W has inputs x_i and
output gradients g_i = d l_i / d(W x_i) = (d f / d z)(W x_i) r_i (the centres x_j held fixed), so
W^T g_i = grad_x f(x_i) r_i and the FACT reads

    W^T W = -(1/(n lambda)) sum_i grad_x f(x_i) r_i x_i^T = sum_i grad_x f(x_i) alpha_i x_i^T =: F   (constant 1).

The constant is exactly 1 for any ridge convention: whatever the ridge, alpha_i = -r_i / ridge at the solution and
the 1/(n lambda) cancels. ``grad_x f(x_i)`` is (d, c), alpha_i is (c,), so F is (d, d) and in general not
symmetric (it is PSD only at a fixed point), hence M <- (F F^T)^{1/2}.

Closed forms used (no autograd; tests check them against autograd). With D_ij = ||x_i - x_j||_M,
grad_x K_M(x_i, x_j) = -G_ij M (x_i - x_j), G = K / L^2 (gaussian) or K / (L D) (laplace; 0 where D = 0: the
Laplace kernel has no gradient at its centre and RFM's reference code drops that term too). Then, with
B = G * (alpha alpha^T) (elementwise) and its graph Laplacian L_B = diag(B 1) - B,

    F = sum_i (grad_x f(x_i) alpha_i) x_i^T = -M X^T L_B X,
    AGOP = (1/n) sum_i grad_x f(x_i) grad_x f(x_i)^T,   grad_x f(x_i)[:, c] = -M sum_j G_ij alpha_jc (x_i - x_j)
    (summed over outputs in closed form, see ``agop``).

Choices (not fixed by the paper): the FACT fixes M's scale only at a fixed point, and a kernel's bandwidth makes the
overall scale of M a second bandwidth; ``normalize`` rescales each new M to trace d (that of M_0 = I) so that
``bandwidth`` keeps its meaning across iterations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

KERNELS = ("laplace", "gaussian")
UPDATES = ("fact", "fact_geo", "agop", "agop_sqrt")
CHUNK = 4096  # rows of a test kernel matrix built at once


@dataclass
class RFMConfig:
    """One FACT-RFM / RFM fit."""

    kernel: str = "gaussian"  # "laplace" or "gaussian"
    bandwidth: float = 1.0  # L in the kernel formulas above
    ridge: float = 0.0  # added to the kernel matrix's diagonal (0: interpolation)
    iterations: int = 10  # M updates; the predictor is fitted iterations + 1 times
    update: str = "fact"  # "fact", "fact_geo", "agop" or "agop_sqrt"
    normalize: bool = True  # rescale every new M to trace d


@dataclass
class Fit:
    """A fitted kernel predictor: f(x) = K_M(x, X) @ alpha."""

    X: torch.Tensor  # (n, d) training inputs, float64
    M: torch.Tensor  # (d, d) feature matrix
    alpha: torch.Tensor  # (n, c) coefficients
    config: RFMConfig = field(default_factory=RFMConfig)

    def predict(self, Z: torch.Tensor) -> torch.Tensor:
        """(m, c) predictions, the kernel built CHUNK rows at a time."""
        Z = Z.double()
        parts = [
            kernel_matrix(Z[s : s + CHUNK], self.X, self.M, self.config) @ self.alpha for s in range(0, len(Z), CHUNK)
        ]
        return torch.cat(parts) if parts else Z.new_zeros(0, self.alpha.shape[1])


def sq_distances(A: torch.Tensor, B: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """(a, b) squared Mahalanobis distances ||A_i - B_j||_M^2, clamped at 0 against rounding."""
    AM = A @ M  # (a, d)
    a2 = (AM * A).sum(-1)  # (a,)
    b2 = ((B @ M) * B).sum(-1)  # (b,)
    return (a2[:, None] + b2[None, :] - 2 * AM @ B.T).clamp_(min=0)


def kernel_matrix(A: torch.Tensor, B: torch.Tensor, M: torch.Tensor, config: RFMConfig) -> torch.Tensor:
    D2 = sq_distances(A, B, M)
    if config.kernel == "gaussian":
        return torch.exp(-D2 / (2 * config.bandwidth**2))
    return torch.exp(-D2.sqrt() / config.bandwidth)


def gradient_weights(K: torch.Tensor, D2: torch.Tensor, config: RFMConfig) -> torch.Tensor:
    """G with grad_x K_M(x_i, x_j) = -G_ij M (x_i - x_j) (see the module docstring)."""
    if config.kernel == "gaussian":
        return K / config.bandwidth**2
    D = D2.sqrt()
    return torch.where(D > 0, K / (config.bandwidth * D.clamp(min=1e-300)), torch.zeros_like(K))


def solve(K: torch.Tensor, Y: torch.Tensor, ridge: float) -> torch.Tensor:
    """alpha = (K + ridge I)^{-1} Y; K may carry leading batch dimensions (..., n, n), Y (..., n, c)."""
    eye = torch.eye(K.shape[-1], dtype=K.dtype)
    return torch.linalg.solve(K + ridge * eye, Y)


def fit(X: torch.Tensor, Y: torch.Tensor, M: torch.Tensor, config: RFMConfig) -> tuple[Fit, torch.Tensor]:
    """Kernel ridge regression with feature matrix M; returns the fit and its training kernel matrix."""
    X, Y, M = X.double(), Y.double().reshape(len(X), -1), M.double()
    K = kernel_matrix(X, X, M, config)
    return Fit(X, M, solve(K, Y, config.ridge), config), K


def input_gradients(model: Fit, K: torch.Tensor) -> torch.Tensor:
    """(c, n, d): grad_x f(x_i) for every output c at every training point."""
    X, M, alpha = model.X, model.M, model.alpha
    G = gradient_weights(K, sq_distances(X, X, M), model.config)  # (n, n)
    Galpha = G @ alpha  # (n, c)
    grads = []
    for c in range(alpha.shape[1]):  # one output at a time keeps memory at n x d
        weighted = G @ (alpha[:, c : c + 1] * X)  # (n, d): sum_j G_ij alpha_jc x_j
        grads.append(-(Galpha[:, c : c + 1] * X - weighted) @ M)
    return torch.stack(grads)  # (c, n, d)


def fact_matrix(model: Fit, K: torch.Tensor) -> torch.Tensor:
    """F = sum_i grad_x f(x_i) alpha_i x_i^T = -M X^T L_B X (d, d), the FACT of the fitted predictor."""
    X, M, alpha = model.X, model.M, model.alpha
    G = gradient_weights(K, sq_distances(X, X, M), model.config)
    B = G * (alpha @ alpha.T)  # (n, n)
    laplacian = torch.diag(B.sum(1)) - B
    return -M @ (X.T @ laplacian @ X)


def agop(model: Fit, K: torch.Tensor) -> torch.Tensor:
    """(1/n) sum_i grad_x f(x_i) grad_x f(x_i)^T (d, d), summed over outputs without forming the gradients.

    grad_x f(x_i)[:, c] = -M v_ic with v_ic = u_ic x_i - sum_j G_ij alpha_jc x_j (u = G alpha), so with G symmetric
    sum_c V_c^T V_c = X^T [diag(sum_c u_ic^2) - C - C^T + (G G) * (alpha alpha^T)] X, C = G * (u alpha^T): one n^3
    product instead of one n^2 d product per output (5x faster on modular addition, where c = p).
    """
    X, M, alpha = model.X, model.M, model.alpha
    G = gradient_weights(K, sq_distances(X, X, M), model.config)  # (n, n), symmetric
    G.fill_diagonal_(0)  # the j = i term is 0 (x_i - x_i); rounding can leave D_ii > 0 and a huge Laplace G_ii
    u = G @ alpha  # (n, c)
    C = G * (u @ alpha.T)
    inner = torch.diag(u.pow(2).sum(1)) - C - C.T + (G @ G) * (alpha @ alpha.T)
    S = X.T @ inner @ X  # (d, d)
    return M @ S @ M / len(X)


def psd_power(A: torch.Tensor, power: float) -> torch.Tensor:
    """A^power for a symmetric PSD matrix (symmetrised first; negative rounding eigenvalues set to 0)."""
    values, vectors = torch.linalg.eigh((A + A.T) / 2)
    return (vectors * values.clamp(min=0) ** power) @ vectors.T


def next_feature_matrix(model: Fit, K: torch.Tensor) -> torch.Tensor:
    """M_{t+1} from the fitted predictor, by the configured update, rescaled to trace d when normalizing."""
    update = model.config.update
    if update == "fact":
        F = fact_matrix(model, K)
        M = psd_power(F @ F.T, 0.5)
    elif update == "fact_geo":
        F = fact_matrix(model, K)
        M = psd_power(F @ model.M @ model.M @ F.T, 0.25)
    elif update == "agop":
        M = psd_power(agop(model, K), 1.0)
    else:
        M = psd_power(agop(model, K), 0.5)
    trace = torch.trace(M)
    if model.config.normalize and trace > 0:
        M = M * (M.shape[0] / trace)
    return M


def rfm(X: torch.Tensor, Y: torch.Tensor, config: RFMConfig, M0: torch.Tensor | None = None, on_fit=None) -> Fit:
    """Alternate an exact kernel fit and a feature-matrix update ``config.iterations`` times; the last fit.

    ``on_fit(t, fit)`` is called after every fit (t = 0 .. iterations), e.g. to log train and test accuracy.
    """
    M = torch.eye(X.shape[1], dtype=torch.float64) if M0 is None else M0.double()
    for t in range(config.iterations + 1):
        model, K = fit(X, Y, M, config)
        if on_fit is not None:
            on_fit(t, model)
        if t < config.iterations:
            M = next_feature_matrix(model, K)
    return model
