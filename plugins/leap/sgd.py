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
    eval_growth: float = 1.02  # the test loss is measured at steps 1, 2, ... growing by this factor
    chunk: int = 256  # fresh samples drawn this many steps at a time
    term_level: float = 0.5  # terms learned = the network's held-out coefficient on every target term >= this
    criterion: str = "loss"  # stop when every run has learned by this criterion: loss or terms
    pickup: float = 4.0  # a coordinate is picked up when its mean squared first-layer weight is 4x its initial 1/d


def init_params(config: OnlineConfig, generator: torch.Generator) -> dict:
    """a (R, m), W (R, m, d), b (R, m) for R runs, on the generator's device."""
    R, m, d, on = config.runs, config.width, config.d, generator.device
    return {
        "a": torch.rand(R, m, generator=generator, device=on) * 2 - 1,
        "W": torch.randn(R, m, d, generator=generator, device=on) / math.sqrt(d),
        "b": torch.rand(R, m, generator=generator, device=on) * 2 - 1,
    }


def forward(params: dict, x: torch.Tensor) -> torch.Tensor:
    """x (R, N, d) -> f (R, N)."""
    hidden = torch.relu(x @ params["W"].transpose(1, 2) + params["b"].unsqueeze(1))  # (R, N, m)
    return (hidden @ params["a"].unsqueeze(-1)).squeeze(-1) / params["a"].shape[1]  # (R, N)


def sgd_step(params: dict, x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
    """One online SGD step per run, in place: x (R, d), y (R); gradients written out (mean-field scaled by m).

    The products are batched row-vector times W^T and an in-place rank-1 update: torch's batched matrix-vector
    path for W (R, m, d) times x (R, d, 1) is ~10x slower on one CPU thread at d = 512.
    """
    a, W, b = params["a"], params["W"], params["b"]
    pre = torch.baddbmm(b.unsqueeze(1), x.unsqueeze(1), W.transpose(1, 2)).squeeze(1)  # (R, m)
    hidden = pre.clamp(min=0)
    error = (a * hidden).mean(1, keepdim=True).sub_(y.unsqueeze(1))  # (R, 1) f(x) - y
    grad_pre = (error * a).mul_(pre > 0)  # (R, m): m * d loss / d pre
    a.sub_(error * hidden, alpha=lr)
    slow = lr / x.shape[1]
    W.addcmul_(grad_pre.unsqueeze(2), x.unsqueeze(1), value=-slow)  # (R, m, d)
    b.sub_(grad_pre, alpha=slow)


def crossing(step: int, loss: float, previous_step: int, previous_loss: float, threshold: float) -> float:
    """The step at which the loss crossed ``threshold`` between two evaluations, interpolated linearly in
    (log step, log loss): the evaluations are ``eval_growth`` apart, and the interpolation keeps that grid from
    quantising the step counts whose d-dependence is measured."""
    if previous_step <= 0 or previous_loss <= threshold or loss >= previous_loss:
        return float(step)
    fraction = math.log(previous_loss / threshold) / math.log(previous_loss / loss)
    return math.exp(math.log(previous_step) + fraction * math.log(step / previous_step))


def train_online(terms: list, config: OnlineConfig, generator: torch.Generator) -> dict:
    """Run until every run has learned the target by ``config.criterion`` (or max_steps): its held-out loss is below
    ``threshold`` (loss), or its held-out coefficient on every target term is at least ``term_level`` (terms).

    Returns ``steps`` (R floats: the step the held-out loss crossed the threshold, interpolated between the two
    evaluations around it, see :func:`crossing`; -1 if never), ``curve`` (evaluated steps and the (R,) relative test
    losses there), ``term_steps`` (the same for the terms criterion),
    ``coefficients`` (at the same steps, the network's held-out coefficient on each target term,
    E[f(x) term(x)], mean over runs; the target's are 1) and ``pickups`` ({coordinate: (R,) first evaluated step at
    which its first-layer weights reached ``pickup`` times their initial mean square, -1 if never}).

    The fresh samples are drawn ``chunk`` steps at a time (the same i.i.d. stream, fewer calls): drawing one sample
    per step cost as much as the step itself.
    """
    params = init_params(config, generator)
    x_test = sample(config.data, config.n_test, config.d, generator).expand(config.runs, -1, -1)  # (R, N, d)
    y_test = evaluate(terms, x_test)  # (R, N)
    basis = torch.stack([evaluate([term], x_test[0]) for term in terms])  # (terms, N): each term's values
    # a term's coefficient is the held-out projection <f, term> / <term, term>: on Gaussian inputs the empirical
    # <term, term> of 512 samples of x1 x2 x3 is 1 +- 0.23, which would move the level a coefficient must reach
    norms = basis.pow(2).sum(1)  # (terms,): n_test on the cube
    scale = y_test.pow(2).mean()
    coordinates = support(terms)
    steps, term_steps = [-1.0] * config.runs, [-1.0] * config.runs
    previous = (0, [math.inf] * config.runs, [0.0] * config.runs)  # the last evaluation: step, losses, shortfalls
    pickups = {c: torch.full((config.runs,), -1, device=generator.device) for c in coordinates}
    curve_steps, curve_losses, curve_coefficients = [], [], []
    next_eval, step = 1, 0
    while step < config.max_steps:
        if step % config.chunk == 0:
            block = min(config.chunk, config.max_steps - step)
            xs = sample(config.data, block * config.runs, config.d, generator).view(block, config.runs, config.d)
            ys = evaluate(terms, xs)  # (block, R)
        sgd_step(params, xs[step % config.chunk], ys[step % config.chunk], config.lr)  # one fresh sample per run
        step += 1
        if step < next_eval and step < config.max_steps:
            continue
        next_eval = max(step + 1, math.ceil(step * config.eval_growth))
        with torch.no_grad():
            prediction = forward(params, x_test)  # (R, N)
            loss = ((prediction - y_test).pow(2).mean(1) / scale).tolist()  # (R,)
        curve_steps.append(step)
        curve_losses.append(loss)
        coefficients = prediction @ basis.T / norms  # (R, terms)
        curve_coefficients.append(coefficients.mean(0).tolist())  # (terms,) run mean
        # the weakest term's shortfall 1 - coefficient, as a "loss" that crosses 1 - term_level
        shortfall = (1 - coefficients.min(1).values).clamp(min=1e-6).tolist()
        for run, value in enumerate(loss):
            if steps[run] < 0 and value <= config.threshold:
                steps[run] = crossing(step, value, previous[0], previous[1][run], config.threshold)
            if term_steps[run] < 0 and shortfall[run] <= 1 - config.term_level:
                level = 1 - config.term_level
                term_steps[run] = crossing(step, shortfall[run], previous[0], previous[2][run], level)
        previous = (step, loss, shortfall)
        mass = params["W"].pow(2).mean(1) * config.d  # (R, d): 1 at init
        for c in coordinates:
            pickups[c][(mass[:, c] >= config.pickup) & (pickups[c] < 0)] = step
        if min(steps if config.criterion == "loss" else term_steps) >= 0:
            break
    return {
        "steps": steps,
        "term_steps": term_steps,
        "curve": (curve_steps, curve_losses),
        "coefficients": curve_coefficients,
        "pickups": {c: p.tolist() for c, p in pickups.items()},
    }
