"""FACT-RFM on cases with a known answer: closed forms against autograd, the FACT's constant, a one-coordinate target,
and the structure summaries."""

from __future__ import annotations

import pytest
import torch
from harness.plugins.fact.rfm import (
    RFMConfig,
    agop,
    fact_matrix,
    fit,
    input_gradients,
    kernel_matrix,
    rfm,
    sq_distances,
)
from harness.plugins.fact.structure import circulant_fraction, support_mass

pytestmark = pytest.mark.usefixtures("one_thread")


def problem(n=24, d=5, c=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    Y = torch.randn(n, c, generator=g, dtype=torch.float64)
    A = torch.randn(d, d, generator=g, dtype=torch.float64)
    return X, Y, A @ A.T / d + 0.1 * torch.eye(d, dtype=torch.float64)


def autograd_gradients(model, kernel: str) -> torch.Tensor:
    """(c, n, d) grad_x f(x_i) by autograd, the centre x_i's own term dropped (the Laplace kernel has no gradient
    there; the Gaussian's is 0)."""
    X, M, alpha = model.X, model.M, model.alpha
    n = len(X)
    Z = X.clone().requires_grad_(True)
    off = ~torch.eye(n, dtype=torch.bool)
    D2 = torch.where(off, sq_distances(Z, X, M), torch.ones(n, n, dtype=torch.float64))
    L = model.config.bandwidth
    K = torch.exp(-D2 / (2 * L**2)) if kernel == "gaussian" else torch.exp(-D2.sqrt() / L)
    out = torch.where(off, K, torch.zeros_like(K)) @ alpha  # (n, c)
    return torch.stack([torch.autograd.grad(out[:, c].sum(), Z, retain_graph=True)[0] for c in range(out.shape[1])])


@pytest.mark.parametrize("kernel", ["gaussian", "laplace"])
def test_closed_form_gradients_fact_and_agop_match_autograd(kernel):
    X, Y, M = problem()
    model, K = fit(X, Y, M, RFMConfig(kernel=kernel, bandwidth=1.5, ridge=0.1))
    J = autograd_gradients(model, kernel)  # (c, n, d)
    assert torch.allclose(input_gradients(model, K), J, atol=1e-6)
    F = torch.einsum("cnd,nc,ne->de", J, model.alpha, X)  # sum_i grad f(x_i) alpha_i x_i^T
    assert torch.allclose(fact_matrix(model, K), F, atol=1e-6 * F.abs().max())
    assert torch.allclose(agop(model, K), torch.einsum("cnd,cne->de", J, J) / len(X), rtol=1e-6)


def test_fact_of_the_ridge_solution_has_constant_one():
    """F = sum_i grad f(x_i) alpha_i x_i^T equals the theorem's -(1/ridge) sum_i grad f(x_i) r_i x_i^T (residuals
    r = f(X) - Y; ridge = n lambda), for any ridge: the constant derived in rfm.py's docstring."""
    X, Y, M = problem()
    for ridge in (0.05, 2.0):
        model, K = fit(X, Y, M, RFMConfig(kernel="gaussian", bandwidth=2.0, ridge=ridge))
        residuals = model.predict(X) - Y  # (n, c)
        J = input_gradients(model, K)
        theorem = -torch.einsum("cnd,nc,ne->de", J, residuals, X) / ridge
        assert torch.allclose(fact_matrix(model, K), theorem, atol=1e-8 * theorem.abs().max())


@pytest.mark.parametrize("update,kernel", [("fact", "gaussian"), ("agop", "laplace")])
def test_rfm_concentrates_on_the_one_relevant_coordinate(update, kernel):
    g = torch.Generator().manual_seed(1)
    X = torch.randn(300, 6, generator=g, dtype=torch.float64)
    Y = torch.sin(2 * X[:, 2:3])  # depends on x_2 only
    config = RFMConfig(kernel=kernel, bandwidth=2.0, ridge=1.0, iterations=4, update=update)
    M = rfm(X, Y, config).M
    assert float(M[2, 2] / torch.trace(M)) > 0.9  # from 1/6 at M_0 = I: M's trace sits on x_2
    assert torch.trace(M).item() == pytest.approx(6.0)  # normalised to trace d
    # the learned kernel is flat along the irrelevant coordinates (at M = I this similarity is exp(-5/8) = 0.54)
    moved = X[:5].clone()
    moved[:, [0, 1, 3, 4, 5]] += 1.0
    if kernel == "gaussian":
        assert (kernel_matrix(moved, X[:5], M, config).diagonal() > 0.8).all()


def test_structure_summaries():
    p = 7
    index = torch.arange(p)
    circulant = torch.cos(2 * torch.pi * (index[:, None] - index[None, :]) / p).double()  # depends on i - j only
    block = torch.block_diag(circulant, circulant)
    assert circulant_fraction(block, p) == pytest.approx(1.0)
    noise = torch.randn(2 * p, 2 * p, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert circulant_fraction(noise + noise.T, p) < 0.5
    assert support_mass(torch.diag(torch.tensor([3.0, 1.0, 0.0, 0.0])), 1) == pytest.approx(0.75)
