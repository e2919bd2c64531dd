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
  (1/n) sum_i J_i^T J_i, J_i = d f(x_i) / d h_i (all outputs), and against its square root.

A plain loop, not the harness Trainer: the Trainer has no gradient-norm stopping rule, and the AGOP needs the
network's Jacobian with respect to every layer's input, which this loop computes from the same forward pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.errors import UsageError, unknown

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
    from harness.plugins.probes.fact import FactProbe, correlation

    from harness.models.mlp import _loss

    probe = FactProbe(weight_decay=weight_decay)
    X = X.detach().requires_grad_(True)
    out, inputs, outputs = forward_with_inputs(model, X)
    loss = _loss(out, targets, None, model.task)
    grads_z = torch.autograd.grad(loss, outputs, retain_graph=True)  # gradient of the mean loss: g_i / n
    jacobians = [torch.autograd.grad(out[:, c].sum(), inputs, retain_graph=True) for c in range(out.shape[1])]
    values = {}
    for i, layer in enumerate(model.layers):
        W = layer.weight.detach().double()  # (out, in)
        H, G = inputs[i].detach().double(), grads_z[i].double()  # (n, in), (n, out)
        lhs = W.T @ W
        F = -(W.T @ (G.T @ H)) / weight_decay  # (in, in)
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
            }
        )
    return values


class FactMLP:
    """W^T W against the FACT and the AGOP, per layer, over full-batch GD with L2 weight decay to stationarity.

    ``dataset=lowrank``: y = z1 z2 + z1^2 / 2, z = U^T x, x ~ N(0, I_d) (square loss); the others: scikit-learn's
    bundled classification sets, standardised (cross-entropy). Bias-free layers, so every parameter is a W.
    """

    name = "fact_mlp"
    version = "1"
    primary_metric = "layer0/fact_correlation"

    def __init__(
        self,
        dataset: str = "lowrank",
        n: int = 256,
        d: int = 10,
        depth: int = 3,
        width: int = 64,
        activation: str = "relu",
        lr: float = 0.2,
        weight_decay: float = 1e-2,
        max_steps: int = 30000,
        grad_tol: float = 1e-6,
        log_every: int = 100,
    ):
        """
        Args:
            dataset: lowrank, iris, wine, breast_cancer or digits.
            n, d: training points and input dimension of the lowrank target.
            depth, width, activation: the MLP (depth linear layers, no biases).
            lr, weight_decay: the GD step and lambda.  max_steps, grad_tol: stop at ||grad|| < grad_tol.
            log_every: steps between measurements.
        """
        from harness.models.mlp import ACTIVATIONS

        if dataset not in DATASETS:
            raise unknown("dataset", dataset, DATASETS)
        if activation not in ACTIVATIONS:
            raise unknown("activation", activation, ACTIVATIONS)
        if weight_decay <= 0:
            raise UsageError(f"weight_decay={weight_decay}: the theorem needs lambda > 0")
        if lr <= 0 or grad_tol <= 0:
            raise UsageError("lr and grad_tol must be positive")
        if min(n, d, depth, width, max_steps, log_every) < 1:
            raise UsageError("n, d, depth, width, max_steps and log_every must be positive")
        self.dataset = dataset
        self.data = {"n": n, "d": d}
        self.model = {"depth": depth, "width": width, "activation": activation}
        self.train = {
            "lr": lr,
            "weight_decay": weight_decay,
            "max_steps": max_steps,
            "grad_tol": grad_tol,
            "log_every": log_every,
        }

    def split(self, ctx):
        from harness.plugins.fact.data import low_rank_polynomial, sklearn_classification

        from harness.seeding import generator

        g = generator(ctx.seed, "data", self.dataset)
        if self.dataset == "lowrank":
            return low_rank_polynomial(self.data["n"], 1000, self.data["d"], g)
        return sklearn_classification(self.dataset, 0.2, g)

    def build(self, ctx, d_in: int, d_out: int, classification: bool):
        from harness.models import MLP
        from harness.training import seed_everything

        seed_everything(ctx.seed_for("init"))
        return MLP(
            d_in,
            self.model["width"],
            d_out,
            depth=self.model["depth"],
            activation=self.model["activation"],
            task="classification" if classification else "regression",
        ).double()

    def run(self, ctx) -> dict[str, float]:
        import torch  # here, not at import: registering the task must not load torch (harness --help stays fast)
        from harness.plugins.fact.data import accuracy
        from harness.plugins.fact.plots import plot_layer_curves, plot_training

        torch.set_num_threads(1)
        split = self.split(ctx)
        classification = self.dataset != "lowrank"
        X, Y = split.X_train, split.Y_train
        targets = Y.argmax(1) if classification else Y
        model = self.build(ctx, X.shape[1], Y.shape[1], classification)
        c = self.train
        history, step, grad_norm = [], 0, float("inf")
        while True:
            loss = model.loss(X, targets)
            penalty = sum(p.pow(2).sum() for p in model.parameters())
            objective = loss + c["weight_decay"] / 2 * penalty
            grads = torch.autograd.grad(objective, list(model.parameters()))
            grad_norm = float(torch.sqrt(sum(g.pow(2).sum() for g in grads)))
            done = grad_norm < c["grad_tol"] or step >= c["max_steps"]
            if step % c["log_every"] == 0 or step & (step - 1) == 0 or done:  # and at powers of 2 (log axis)
                values = {
                    "train_loss": loss.item(),
                    "objective": objective.item(),
                    "grad_norm": grad_norm,
                    **layer_statistics(model, X, targets, c["weight_decay"]),
                }
                history.append({"step": step, **values})
                ctx.log(step, values)
            if done:
                break
            with torch.no_grad():
                for param, grad in zip(model.parameters(), grads):
                    param -= c["lr"] * grad
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
        return {**final, **test, "steps": float(step), "converged": float(grad_norm < c["grad_tol"])}
