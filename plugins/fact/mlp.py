"""``fact_mlp``: the Features at Convergence Theorem checked on an MLP trained in the theorem's setting.

Setting (arXiv 2507.05644): plain full-batch gradient descent on L(theta) + (lambda/2)||theta||^2 (L2 in the
gradient, not decoupled decay; no momentum, no clipping, constant step), run until the gradient norm of that
objective falls below ``grad_tol`` (or ``max_steps``). At such a stationary point every layer W (y = W h) obeys

    W^T W = -(1/(n lambda)) sum_i (W^T g_i) h_i^T,   g_i = d loss_i / d(W h_i).

Every ``log_every`` steps and at every power of 2, per layer i (``layer<i>/...`` in metrics.jsonl and the final
metrics):
- ``fact_correlation``: Pearson correlation of W^T W with the right-hand side F (as the ``fact`` probe computes it);
- ``fact_sym_correlation``: with (F F^T)^{1/2}, since F is PSD only at convergence;
- ``fact_residual``: ||W^T W - F||_F / ||W^T W||_F (checks the scale, i.e. the 1/(n lambda));
- ``nfa_correlation`` / ``nfa_sqrt_correlation``: the neural feature ansatz, W^T W against the AGOP
  (1/n) sum_i J_i^T J_i, J_i = d f(x_i) / d h_i (all outputs), and against its square root;
- ``fact_shuffled_correlation`` / ``fact_shuffled_residual``: a control that should not match, the same sum with
  each input h_i paired with another example's gradient g_{i-1} (a cyclic shift). At a stationary point the FACT
  is the stationarity equation times W, so the converged values check the optimiser (a convergence check); the
  evidence is the curve over training (the FACT far from W^T W early on) and this control staying low.

A plain loop, not the harness Trainer: the Trainer has no gradient-norm stopping rule, and the AGOP needs the
network's Jacobian with respect to every layer's input, which this loop computes from the same forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import unknown
from harness.options import Options, option, takes

if TYPE_CHECKING:
    import torch

DATASETS = ("lowrank", "iris", "wine", "breast_cancer", "digits")


def forward_with_inputs(model, X: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """The MLP's output and, per layer, its input h and its output z = W h (all in the autograd graph)."""
    inputs, outputs, h = [], [], X
    for i, layer in enumerate(model.layers):
        inputs.append(h)
        z = layer(h)
        outputs.append(z)
        h = model.activation(z) if i < len(model.layers) - 1 else z
    return h, inputs, outputs


def layer_statistics(model, X: torch.Tensor, targets: torch.Tensor, weight_decay: float) -> dict[str, float]:
    """FACT and NFA agreement of every layer at the current weights (the loss is the model's mean loss)."""
    import torch
    from harness.plugins.fact.rfm import psd_power

    from harness.models.mlp import mean_loss
    from harness.probes.fact import FactProbe, correlation

    probe = FactProbe(weight_decay=weight_decay)
    X = X.detach().requires_grad_(True)
    out, inputs, outputs = forward_with_inputs(model, X)
    loss = mean_loss(out, targets, None, model.task)
    grads_z = torch.autograd.grad(loss, outputs, retain_graph=True)  # gradient of the mean loss: g_i / n
    jacobians = [torch.autograd.grad(out[:, c].sum(), inputs, retain_graph=True) for c in range(out.shape[1])]
    values = {}
    for i, layer in enumerate(model.layers):
        W = layer.weight.detach().double()  # (out, in)
        H, G = inputs[i].detach().double(), grads_z[i].double()  # (n, in), (n, out)
        lhs = W.T @ W
        F = -(W.T @ (G.T @ H)) / weight_decay  # (in, in)
        shuffled = -(W.T @ (G.roll(1, 0).T @ H)) / weight_decay  # g_{i-1} paired with h_i: should not match
        fact = probe.layer_values(W.float(), H.float(), G.float())  # the probe's own formula
        n = H.shape[0]
        agop = sum(J[i].double().T @ J[i].double() for J in jacobians) / n  # (in, in)
        values.update(
            {
                f"layer{i}/fact_correlation": fact["corr"],
                f"layer{i}/fact_sym_correlation": correlation(lhs, psd_power(F @ F.T, 0.5)),
                f"layer{i}/fact_residual": fact["residual"],
                f"layer{i}/nfa_correlation": correlation(lhs, agop),
                f"layer{i}/nfa_sqrt_correlation": correlation(lhs, psd_power(agop, 0.5)),
                f"layer{i}/fact_shuffled_correlation": correlation(lhs, shuffled),
                f"layer{i}/fact_shuffled_residual": float((lhs - shuffled).norm() / lhs.norm()),
            }
        )
    return values


@dataclass(frozen=True)
class FactMLPOptions(Options):
    """The data, the bias-free MLP, and full-batch GD with weight decay to a stationary point."""

    dataset: str = option("lowrank", "lowrank, iris, wine, breast_cancer or digits", choices=DATASETS)
    n: int = option(256, "training points of the lowrank target", ge=1)
    d: int = option(10, "input dimension of the lowrank target", ge=1)
    depth: int = option(3, "linear layers of the MLP (no biases)", ge=1)
    width: int = option(64, "hidden units per layer", ge=1)
    activation: str = option("relu", "the MLP's activation (harness.models.mlp)")
    lr: float = option(0.2, "the GD step", gt=0)
    weight_decay: float = option(1e-2, "lambda (the theorem needs lambda > 0)", gt=0)
    max_steps: int = option(30000, "GD steps at most", ge=1)
    grad_tol: float = option(1e-6, "stop at ||grad|| < grad_tol", gt=0)
    log_every: int = option(100, "steps between measurements", ge=1)

    def check(self) -> None:
        from harness.models.mlp import ACTIVATIONS

        if self.activation not in ACTIVATIONS:
            raise unknown("activation", self.activation, ACTIVATIONS)


@takes(FactMLPOptions)
class FactMLP:
    """W^T W against the FACT and the AGOP, per layer, over full-batch GD with L2 weight decay to stationarity.

    ``dataset=lowrank``: y = z1 z2 + z1^2 / 2, z = U^T x, x ~ N(0, I_d) (square loss); the others: scikit-learn's
    bundled classification sets, standardised (cross-entropy). Bias-free layers, so every parameter is a W.
    """

    name = "fact_mlp"
    threads = 1  # torch threads the run sets: small problems, so a sweep runs its points side by side
    version = "1"
    primary_metric = "layer0/fact_correlation"

    def __init__(self, options: FactMLPOptions):
        self.options, self.dataset = options, options.dataset

    def split(self, ctx):
        from harness.plugins.fact.data import low_rank_polynomial, sklearn_classification

        from harness.seeding import generator

        g = generator(ctx.seed, "data", self.dataset)
        if self.dataset == "lowrank":
            return low_rank_polynomial(self.options.n, 1000, self.options.d, g)
        return sklearn_classification(self.dataset, 0.2, g)

    def build(self, ctx, d_in: int, d_out: int, classification: bool):
        from harness.models import MLP
        from harness.training import seed_everything

        seed_everything(ctx.seed_for("init"))
        return MLP(
            d_in,
            self.options.width,
            d_out,
            depth=self.options.depth,
            activation=self.options.activation,
            task="classification" if classification else "regression",
        ).double()

    def run(self, ctx) -> dict[str, float]:
        import torch  # here, not at import: registering the task must not load torch (harness --help stays fast)
        from harness.plugins.fact.data import accuracy
        from harness.plugins.fact.plots import plot_layer_curves, plot_training

        split = self.split(ctx)
        classification = self.dataset != "lowrank"
        X, Y = split.X_train, split.Y_train
        targets = Y.argmax(1) if classification else Y
        model = self.build(ctx, X.shape[1], Y.shape[1], classification)
        c = self.options
        history, step, grad_norm = [], 0, float("inf")
        while True:
            loss = model.loss(X, targets)
            penalty = sum(p.pow(2).sum() for p in model.parameters())
            objective = loss + c.weight_decay / 2 * penalty
            grads = torch.autograd.grad(objective, list(model.parameters()))
            grad_norm = float(torch.sqrt(sum(g.pow(2).sum() for g in grads)))
            done = grad_norm < c.grad_tol or step >= c.max_steps
            if step % c.log_every == 0 or step & (step - 1) == 0 or done:  # and at powers of 2 (log axis)
                values = {
                    "train_loss": loss.item(),
                    "objective": objective.item(),
                    "grad_norm": grad_norm,
                    **layer_statistics(model, X, targets, c.weight_decay),
                }
                history.append({"step": step, **values})
                ctx.log(step, values)
            if done:
                break
            with torch.no_grad():
                for param, grad in zip(model.parameters(), grads):
                    param -= c.lr * grad
            step += 1
        with torch.no_grad():
            predictions = model(split.X_test)
        test = (
            {"test_accuracy": accuracy(predictions, split.Y_test)}
            if classification
            else {"test_mse": float((predictions - split.Y_test).pow(2).mean())}
        )
        plot_layer_curves(ctx.path("correlations.png"), history, len(model.layers))
        plot_training(ctx.path("training.png"), history)
        final = {k: v for k, v in history[-1].items() if k != "step"}
        return {**final, **test, "steps": float(step), "converged": float(grad_norm < c.grad_tol)}
