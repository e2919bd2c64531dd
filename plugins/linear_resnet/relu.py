"""The paper's nonlinear punchline (arXiv 2501.19149): weight decay on a ReLU ResNet biases it towards a low
bottleneck rank, measured as the rank of the learned function's input-output Jacobian.

Teacher (our choice): y = sum_k s_k u_k 2 (relu(v_k . x) - E relu) + noise, with r orthonormal directions v_k, so
the target depends on x through r directions only (its Jacobian has rank r everywhere) and its best linear fit is
M* = sum_k s_k u_k v_k^T, of rank r too. Inputs are Gaussian, whitened on the training set (X^T X = n I), so the
linear ResNet on the same data is the closed-form case of theory.py: its fit shrinks the singular values of the
least-squares matrix by ``resnet_shrinkage``.

Network: h_0 = A x, h_{l+1} = h_l + W2_l relu(W1_l h_l), f(x) = B h_L, trained on the full batch to a minimum of
1/(2n) ||f(X) - Y||^2 + (mu/2) (||A||^2 + ||B||^2 + lambda L sum_l (||W1_l||^2 + ||W2_l||^2)), the linear cost
with each residual branch's two matrices in place of W_l. The cost is in the loss (so the objective is the one
the closed form minimises); Adam with a cosine decay to 0 reaches its minimum in a few thousand steps, where plain
gradient descent needs a step small enough for the least-regularised nets and was too slow on the shared CPU.

Its Jacobian rank is the number of singular values of the stacked Jacobians [J(x_1); ...; J(x_n)] (one
d_out x d_in block per training input) above ``RANK_TOL`` of the largest: how many input directions the learned
function uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from harness.errors import UsageError
from harness.options import Options, option, takes

RANK_TOL = 0.01  # a Jacobian (or closed-form) singular value counts towards the rank above this fraction of the top
RELU_MEAN = (2 * np.pi) ** -0.5  # E relu(z), z ~ N(0, 1)


@dataclass(frozen=True)
class ReluResNetOptions(Options):
    """The teacher, the network's shape and costs, and the full-batch optimiser."""

    dim: int = option(16, "input and output dimension, and the network's width", ge=1)
    rank: int = option(3, "directions r the teacher depends on", ge=1)
    signal: float = option(6.0, "the teacher's largest s_k (the others step down linearly to signal / r)", gt=0)
    noise: float = option(0.3, "standard deviation of the noise on each output", ge=0)
    samples: int = option(256, "training inputs n (full batch)", ge=2)
    depth: int = option(8, "residual blocks L", ge=1)
    lam: float = option(1.0, "lambda, the weight of the residual blocks' cost", gt=0)
    mu: float = option(0.3, "weight of the whole cost against the squared error", gt=0)
    steps: int = option(2000, "full-batch Adam steps", ge=1)
    lr: float = option(0.01, "Adam's peak step (cosine decay to 0)", gt=0)

    def check(self) -> None:
        if self.rank > self.dim:
            raise UsageError(f"rank={self.rank} is larger than dim={self.dim}: choose rank <= dim")
        if self.samples < self.dim:
            raise UsageError(f"samples={self.samples} < dim={self.dim}: whitening needs samples >= dim")


def make_data(o: ReluResNetOptions, teacher_seed: int, sample_seed: int, n: int, whiten: bool = True):
    """(X, Y, clean Y) in float64: X Gaussian, whitened on itself (X^T X = n I) for training; Y = teacher + noise."""
    import torch

    g = torch.Generator().manual_seed(teacher_seed)
    u, _ = torch.linalg.qr(torch.randn(o.dim, o.rank, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(o.dim, o.rank, generator=g, dtype=torch.float64))
    s = o.signal * torch.arange(o.rank, 0, -1, dtype=torch.float64) / o.rank
    g = torch.Generator().manual_seed(sample_seed)
    x = torch.randn(n, o.dim, generator=g, dtype=torch.float64)
    if whiten:
        x = x @ torch.linalg.inv(torch.linalg.cholesky(x.T @ x / n)).T  # (n, d), now X^T X = n I
    clean = (2 * ((x @ v).relu() - RELU_MEAN) * s) @ u.T  # (n, d): depends on x through v only
    return x, clean + o.noise * torch.randn(n, o.dim, generator=g, dtype=torch.float64), clean


def build(o: ReluResNetOptions, seed: int):
    """The ReLU ResNet's parameters: A, B random N(0, 1/dim); W1 random small, W2 = 0 (f starts as B A)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    d, L = o.dim, o.depth

    def rand(*shape, scale):
        return torch.nn.Parameter(torch.randn(*shape, generator=g, dtype=torch.float64) * scale)

    model = torch.nn.ParameterDict(
        {
            "A": rand(d, d, scale=d**-0.5),
            "B": rand(d, d, scale=d**-0.5),
            "W1": rand(L, d, d, scale=d**-0.5),
            "W2": torch.nn.Parameter(torch.zeros(L, d, d, dtype=torch.float64)),
        }
    )
    return model


def forward(model, x):
    """Row-vector inputs (n, d) -> (n, d): B (h + W2 relu(W1 h)) ... A x."""
    h = x @ model["A"].T
    for w1, w2 in zip(model["W1"], model["W2"]):
        h = h + (h @ w1.T).relu() @ w2.T
    return h @ model["B"].T


def cost(model, lam: float) -> object:
    depth = model["W1"].shape[0]
    residual = model["W1"].square().sum() + model["W2"].square().sum()
    return model["A"].square().sum() + model["B"].square().sum() + lam * depth * residual


def jacobian_spectrum(model, x) -> np.ndarray:
    """Singular values of the stacked Jacobians (n d_out, d_in) over the inputs x, divided by sqrt(n)."""
    import torch
    from torch.func import jacrev, vmap

    jac = vmap(jacrev(lambda xi: forward(model, xi[None])[0]))(x.detach())  # (n, d_out, d_in)
    return torch.linalg.svdvals(jac.reshape(-1, jac.shape[-1])).detach().numpy() / len(x) ** 0.5


@takes(ReluResNetOptions)
class ReluResNetTask:
    """A ReLU ResNet with weight decay on a rank-r target: Jacobian rank against lambda, depth and the linear fit."""

    name = "linear_resnet_relu"
    version = "1"
    primary_metric = "jacobian_rank"
    threads = 1  # torch threads the run sets: small problems, so a sweep runs its points side by side

    def __init__(self, options: ReluResNetOptions):
        self.options = options

    @staticmethod
    def sweep_summary(points: list[dict], ctx) -> dict[str, float]:
        """The Jacobian spectra of every lambda on one figure per depth (see plots.relu_summary)."""
        from harness.plugins.linear_resnet.plots import relu_summary

        return relu_summary(points, ctx)

    def run(self, ctx) -> dict[str, float]:
        import torch
        from harness.plugins.linear_resnet.theory import resnet_shrinkage

        from harness.training import TrainConfig

        o = self.options
        teacher = ctx.seed_for("teacher")
        x, y, _ = make_data(o, teacher, ctx.seed_for("train data"), o.samples)
        model = build(o, ctx.seed_for("init"))

        def loss_fn(model, batch):
            fit = 0.5 * (forward(model, batch["x"]) - batch["y"]).square().sum(1).mean()
            return fit + 0.5 * o.mu * cost(model, o.lam)

        config = TrainConfig(
            steps=o.steps,
            batch_size=o.samples,
            lr=o.lr,
            optimizer="adamw",
            weight_decay=0.0,  # the cost is in loss_fn
            schedule="cosine",
            grad_clip=0.0,
            log_every=max(1, o.steps // 100),
            seed=ctx.seed_for("train") % 2**31,
        )
        ctx.trainer(model, config, lambda step, g: {"x": x, "y": y}, loss_fn=loss_fn, progress=False).fit()
        with torch.no_grad():
            objective = float(loss_fn(model, {"x": x, "y": y}))
            x_test, _, clean = make_data(o, teacher, ctx.seed_for("test data"), 4 * o.samples, whiten=False)
            test_error = float((forward(model, x_test) - clean).square().sum() / clean.square().sum())
        jac = jacobian_spectrum(model, x)
        least_squares = torch.linalg.svdvals(y.T @ x / o.samples).numpy()  # the linear fit's singular values
        linear = resnet_shrinkage(least_squares, o.mu, o.depth, o.lam)
        metrics = {
            "jacobian_rank": float((jac > RANK_TOL * jac[0]).sum()),
            "jacobian_stable_rank": float((jac**2).sum() / jac[0] ** 2),
            "linear_rank": float((linear > RANK_TOL * max(linear[0], 1e-12)).sum()) if linear[0] > 0 else 0.0,
            "objective": objective,
            "test_error": test_error,
            "linear_test_error": linear_error(x_test, clean, y.T @ x / o.samples, linear),
        }
        for k in range(min(6, len(jac))):
            metrics[f"jacobian_sv{k}"] = float(jac[k] / jac[0])
        record = {"jacobian": jac.tolist(), "linear": linear.tolist(), "least_squares": least_squares.tolist()}
        ctx.path("spectra.json").write_text(json.dumps({**record, "lam": o.lam, "depth": o.depth}))
        return metrics


def linear_error(x, clean, least_squares, shrunk: np.ndarray) -> float:
    """Relative test error of the linear ResNet's closed-form fit: the least-squares matrix with shrunk values."""
    import torch

    u, _, vh = torch.linalg.svd(least_squares)
    fit = u @ torch.diag(torch.as_tensor(shrunk, dtype=u.dtype)) @ vh
    return float((x @ fit.T - clean).square().sum() / clean.square().sum())
