"""A two-layer tanh network scaled by alpha, trained beside its exact linearisation at initialisation.

Lazy training (Chizat et al. 2019) as arXiv 2305.13141 states it: for a model h(w) and the square loss R, gradient
flow on ``(1/alpha^2) R(alpha (h(w) - h(w0)))`` for the model and on the same loss of the linearisation
``h(w0) + Dh(w0) (w - w0)`` for the tangent model. The bounded quantity is the gap between the two scaled
predictions ``alpha (h(w(t)) - h(w0))`` and ``alpha Dh(w0) (w_lin(t) - w0)``.

Choices (the paper has no experiment to copy):
- h(x) = a . tanh(U x / sqrt(d)) / sqrt(m) (NTK parametrisation, standard normal init, no bias). tanh and not ReLU:
  the theorem needs a Lipschitz Jacobian Dh, which ReLU's is not.
- The Jacobian Dh(w0) on every input is computed once, exactly, by ``torch.func.jacrev`` of a
  ``torch.func.functional_call`` of the network; the tangent model is then that matrix times (w - w0): exactly
  linear in w, no finite differences.
- Centring by h(w0) makes both models start at 0, so they differ only through the dynamics.
- Gradient flow is approximated by full-batch GD with step ``dt / lambda_max``, lambda_max the top eigenvalue of
  the empirical NTK ``Dh Dh^T / n`` on the training set at init. Time is counted in units of 1 / lambda_max
  ("kernel time"), so T = 1 is when the fastest direction has moved; the function-space dynamics
  ``d f / dt = -(K / n)(f - y)`` do not depend on alpha, so one time axis serves every alpha.
- Every alpha of the grid trains at once as a batch of independent parameter vectors (rows of one tensor), in
  float64 (deviations at large alpha are ~1e-4 of the predictions, near float32's resolution after 10^4 steps).
- ``train_side_by_side`` reads the model through the problem's ``forward(w, x)`` (batched over parameter vectors)
  and its Jacobian at w0, so the same loop, step and sup run the network here and the worst case of tight.py.
- A plain torch loop, not the shared Trainer: this is full-batch GD on a fixed training set for two models in
  lockstep, one of them a matrix product, with the gap between them measured after every step (the sup over t).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class LazyConfig:
    d: int = 8  # input dimension; inputs uniform on the sphere of radius sqrt(d)
    width: int = 128  # hidden units m
    n_train: int = 64  # training inputs (full-batch GD)
    n_test: int = 256  # held-out inputs on which the deviation is measured
    target: str = "teacher"  # teacher: a random width-4 tanh network; random: i.i.d. N(0, 1) labels; tight: tight.py
    dt: float = 0.5  # GD step in kernel time (units of 1 / lambda_max)
    horizon: float = 1000.0  # last time T, in kernel time
    curvature: float = 1.0  # target=tight only: b = Lip(Dh) of the diagonal quadratic model
    spectrum_min: float = 1e-4  # target=tight only: its smallest kernel eigenvalue (the largest is ~1)


class TwoLayerTanh(nn.Module):
    """h(x) = a . tanh(U x / sqrt(d)) / sqrt(m), with standard normal U (m, d) and a (m)."""

    def __init__(self, d: int, width: int):
        super().__init__()
        self.U = nn.Parameter(torch.randn(width, d))
        self.a = nn.Parameter(torch.randn(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d, m = x.shape[-1], self.a.shape[-1]
        return torch.tanh(x @ self.U.T / math.sqrt(d)) @ self.a / math.sqrt(m)


def flat_function(model: nn.Module):
    """``h(w, x)`` for a flat parameter vector ``w``, through ``torch.func.functional_call``."""
    names = [name for name, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]

    def h(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        params = {n: chunk.view(s) for n, chunk, s in zip(names, torch.split(w, sizes), shapes)}
        return torch.func.functional_call(model, params, (x,))

    return h


def batched_forward(w: torch.Tensor, x: torch.Tensor, d: int, width: int) -> torch.Tensor:
    """The same network for A parameter vectors at once: w (A, p) and x (N, d) -> (A, N)."""
    A = w.shape[0]
    U = w[:, : width * d].view(A, width, d)  # (A, m, d), the layout of flat_function (U first, then a)
    a = w[:, width * d :].unsqueeze(-1)  # (A, m, 1)
    hidden = torch.tanh(x @ U.transpose(1, 2) / math.sqrt(d))  # (A, N, m)
    return (hidden @ a).squeeze(-1) / math.sqrt(width)  # (A, N)


def make_problem(config: LazyConfig, generator: torch.Generator) -> dict:
    """Inputs, labels, the initial parameters, their Jacobian and the NTK's top eigenvalue."""
    n = config.n_train + config.n_test
    x = torch.randn(n, config.d, generator=generator, dtype=torch.float64)
    x = x / x.norm(dim=1, keepdim=True) * math.sqrt(config.d)
    if config.target == "teacher":
        teacher = torch.randn(4, config.d, generator=generator, dtype=torch.float64)
        y = torch.tanh(x @ teacher.T / math.sqrt(config.d)) @ torch.randn(4, generator=generator, dtype=torch.float64)
        y = y / y[: config.n_train].std()
    else:
        y = torch.randn(n, generator=generator, dtype=torch.float64)
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        model = TwoLayerTanh(config.d, config.width).double()
    h = flat_function(model)
    w0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    jacobian = torch.func.jacrev(h)(w0, x)  # (N, p): row i is dh(x_i)/dw at w0
    train = jacobian[: config.n_train]
    lambda_max = torch.linalg.eigvalsh(train @ train.T / config.n_train)[-1].item()

    def forward(w: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        return batched_forward(w, inputs, config.d, config.width)

    return {"x": x, "y": y, "w0": w0, "jacobian": jacobian, "lambda_max": lambda_max, "h": h, "forward": forward}


def train_side_by_side(
    problem: dict, alphas: list[float], config: LazyConfig, times: list[float], on_record=None
) -> dict:
    """GD on both models for every alpha; sup over t <= T of the held-out gaps at each T in ``times``.

    Returns ``{"pred": (A, len(times)), "param": (A, len(times)), "loss": (A, len(times))}`` as lists: the sup of
    the RMS prediction gap on held-out inputs, the sup of ``alpha ||w - w_lin||`` (the parameter gap in the units
    of alpha (w - w0), whose image under Dh is the prediction), and the model's training loss at T.
    ``on_record(t, values)`` is called at the times of ``times`` with the current (not sup) values.
    """
    x, y, w0, J, forward = problem["x"], problem["y"], problem["w0"], problem["jacobian"], problem["forward"]
    n = config.n_train
    alpha = torch.tensor(alphas, dtype=torch.float64).unsqueeze(1)  # (A, 1)
    step = config.dt / problem["lambda_max"]  # raw GD step; kernel time advances by config.dt per step
    h0 = forward(w0.unsqueeze(0), x)  # (1, N)
    w = w0.repeat(len(alphas), 1)  # (A, p) real model
    w_lin = w.clone()  # (A, p) tangent model
    sup_pred = torch.zeros(len(alphas), dtype=torch.float64)
    sup_param = torch.zeros_like(sup_pred)
    out = {"pred": [], "param": [], "loss": []}
    steps = round(times[-1] / config.dt) + 1  # the gap at time T is measured before step T / dt + 1
    next_time = 0
    for k in range(1, steps + 1):
        t = (k - 1) * config.dt  # the time of w and w_lin before this step
        recording = next_time < len(times) and t >= times[next_time] - 1e-9
        if recording or k % max(1, k // 200) == 0:  # the sup is taken on a grid 0.5% of t apart (every step early)
            with torch.no_grad():
                gap = alpha * (forward(w, x[n:]) - h0[:, n:] - (w_lin - w0) @ J[n:].T)  # (A, n_test)
                gap = gap.pow(2).mean(1).sqrt()  # (A,) held-out RMS gap
                torch.maximum(sup_pred, gap, out=sup_pred)
                torch.maximum(sup_param, alpha.squeeze(1) * (w - w_lin).norm(dim=1), out=sup_param)
        w.requires_grad_(True)
        f = alpha * (forward(w, x[:n]) - h0[:, :n])  # (A, n)
        loss = 0.5 * ((f - y[:n]) ** 2).mean(1)  # (A,) R(alpha (h - h0))
        (grad,) = torch.autograd.grad((loss / alpha.squeeze(1) ** 2).sum(), w)
        f_lin = alpha * ((w_lin - w0) @ J[:n].T)  # (A, n)
        grad_lin = ((f_lin - y[:n]) @ J[:n]) / (n * alpha)  # (A, p) gradient of R(f_lin) / alpha^2
        while recording:
            out["pred"].append(sup_pred.tolist())
            out["param"].append(sup_param.tolist())
            out["loss"].append(loss.detach().tolist())
            if on_record:
                on_record(times[next_time], {"gap": gap.tolist(), "loss": loss.detach().tolist()})
            next_time += 1
            recording = next_time < len(times) and t >= times[next_time] - 1e-9
        with torch.no_grad():
            w = w - step * grad
            w_lin = w_lin - step * grad_lin
    return {key: [list(row) for row in zip(*value)] for key, value in out.items()}  # (A, len(times))
