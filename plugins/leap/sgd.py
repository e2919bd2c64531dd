"""Online SGD on a two-layer ReLU network, many independent runs at once, one fresh sample per run per step.

The network is the mean-field two-layer net f(x) = (1/m) sum_j a_j relu(<w_j, x> + b_j) with w_j ~ N(0, I/d) (so
<w_j, x> is O(1) on isotropic data), b_j and a_j ~ U(-1, 1). Each step draws one fresh sample per run and takes an
SGD step on (f(x) - y)^2 / 2 with learning rate ``lr`` on a and ``lr / d`` on w and b, after the mean-field scaling
of the gradients by m (so the dynamics do not depend on the width). ``lr / d`` is what keeps online SGD stable on
inputs of norm sqrt(d); it is also the scaling under which the paper's step counts ~ d^max(Leap - 1, 1) are stated
(time ~ d steps per unit of the limiting dynamics). Biases matter: without them a ReLU unit has no odd Hermite
coefficient beyond degree 1, and x1 x2 x3 could not be correlated with it.

Why a plain torch loop and not the shared Trainer: the runs of a point (different seeds) are one tensor of shape
(runs, m, d) updated by hand-written gradients, because one sample per step through autograd and the Trainer
costs ~10x more per step in Python overhead, and the measured quantity is the step count itself, over up to ~10^5
single-sample steps per run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from harness.plugins.leap.targets import evaluate, sample, support


@dataclass
class OnlineConfig:
    d: int = 32  # input dimension
    width: int = 64  # hidden units m
    lr: float = 0.1  # step on a; w and b take lr / d
    runs: int = 6  # independent runs (seeds) trained side by side
    max_steps: int = 400_000  # give up after this many samples per run
    threshold: float = 0.1  # learned = test MSE <= threshold * E[f*^2]
    n_test: int = 512  # fixed held-out samples for the test loss
    data: str = "boolean"  # boolean or gaussian
    eval_growth: float = 1.05  # the test loss is measured at steps 1, 2, ... growing by this factor
    pickup: float = 4.0  # a coordinate is picked up when its mean squared first-layer weight is 4x its initial 1/d


def init_params(config: OnlineConfig, generator: torch.Generator) -> dict:
    """a (R, m), W (R, m, d), b (R, m) for R runs."""
    R, m, d = config.runs, config.width, config.d
    return {
        "a": torch.rand(R, m, generator=generator) * 2 - 1,
        "W": torch.randn(R, m, d, generator=generator) / math.sqrt(d),
        "b": torch.rand(R, m, generator=generator) * 2 - 1,
    }


def forward(params: dict, x: torch.Tensor) -> torch.Tensor:
    """x (R, N, d) -> f (R, N)."""
    hidden = torch.relu(x @ params["W"].transpose(1, 2) + params["b"].unsqueeze(1))  # (R, N, m)
    return (hidden @ params["a"].unsqueeze(-1)).squeeze(-1) / params["a"].shape[1]  # (R, N)


def sgd_step(params: dict, x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
    """One online SGD step per run, in place: x (R, d), y (R); gradients written out (mean-field scaled by m)."""
    a, W, b = params["a"], params["W"], params["b"]
    pre = torch.einsum("rmd,rd->rm", W, x) + b  # (R, m)
    hidden = torch.relu(pre)
    error = (a * hidden).mean(1) - y  # (R,) f(x) - y
    grad_pre = error.unsqueeze(1) * a * (pre > 0)  # (R, m): m * d loss / d pre
    a -= lr * error.unsqueeze(1) * hidden
    slow = lr / x.shape[1]
    W -= slow * grad_pre.unsqueeze(2) * x.unsqueeze(1)  # (R, m, d)
    b -= slow * grad_pre


def train_online(terms: list, config: OnlineConfig, generator: torch.Generator) -> dict:
    """Run until every run's test loss is below the threshold (or max_steps).

    Returns ``steps`` (R: first evaluated step below threshold, -1 if never), ``curve`` (evaluated steps and the
    (R,) relative test losses there), ``coefficients`` (at the same steps, the network's held-out coefficient on
    each target term, E[f(x) term(x)], mean over runs; the target's are 1) and ``pickups`` ({coordinate: (R,)
    first evaluated step at which its first-layer weights reached ``pickup`` times their initial mean square, -1 if
    never}).
    """
    params = init_params(config, generator)
    x_test = sample(config.data, config.n_test, config.d, generator).expand(config.runs, -1, -1)  # (R, N, d)
    y_test = evaluate(terms, x_test)  # (R, N)
    basis = torch.stack([evaluate([term], x_test[0]) for term in terms])  # (terms, N): each term's values
    scale = y_test.pow(2).mean()
    coordinates = support(terms)
    steps = torch.full((config.runs,), -1)
    pickups = {c: torch.full((config.runs,), -1) for c in coordinates}
    curve_steps, curve_losses, curve_coefficients = [], [], []
    next_eval, step = 1, 0
    while step < config.max_steps:
        x = sample(config.data, config.runs, config.d, generator)  # (R, d): one fresh sample per run
        sgd_step(params, x, evaluate(terms, x), config.lr)
        step += 1
        if step < next_eval and step < config.max_steps:
            continue
        next_eval = max(step + 1, math.ceil(step * config.eval_growth))
        with torch.no_grad():
            prediction = forward(params, x_test)  # (R, N)
            loss = (prediction - y_test).pow(2).mean(1) / scale  # (R,)
        curve_steps.append(step)
        curve_losses.append(loss.tolist())
        curve_coefficients.append((prediction @ basis.T / config.n_test).mean(0).tolist())  # (terms,) run mean
        steps[(loss <= config.threshold) & (steps < 0)] = step
        mass = params["W"].pow(2).mean(1) * config.d  # (R, d): 1 at init
        for c in coordinates:
            pickups[c][(mass[:, c] >= config.pickup) & (pickups[c] < 0)] = step
        if (steps >= 0).all():
            break
    return {
        "steps": steps.tolist(),
        "curve": (curve_steps, curve_losses),
        "coefficients": curve_coefficients,
        "pickups": {c: p.tolist() for c, p in pickups.items()},
    }
