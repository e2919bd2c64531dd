"""incremental_rank on real data: a small vision transformer on scikit-learn's digits from small init (arXiv
2306.07042).

The data are the 8 x 8 handwritten digits bundled with scikit-learn (1797 images, nothing downloaded): each image
is cut into 16 patches of 2 x 2 pixels (tokens of 4 values, standardised), and a zero token is appended whose
output the classifier reads (the harness's ``cls`` head reads the last position). A standard transformer of the
harness (pre-LN, GELU FFN, learned positions, no causal mask, no biases) has every weight matrix at ``init_scale``
= alpha times the GPT-2 init; the patch projection (4 -> d_model) is N(0, 1) so the tokens themselves are not
small, only the weights that learn. Training is plain full-batch gradient descent (no momentum, constant step, no
clipping) on the cross-entropy of ``samples`` training images: the theorem's dynamics on real data. The rank probe
follows, per layer and head, the singular values of Delta(W_Q W_K^T) and Delta(W_V W_O); the staircase finder
(staircase.py) looks for loss drops, rank jumps and whether the jumps sit at the drops, on the theorem's clock
tau = lr x step / log(1/alpha).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from harness.options import Options, option, takes

RECORDS = 200  # loss and spectrum snapshots per training
PATCH = 2  # pixels per patch side: 16 tokens of 4 values


def digits(samples: int, seed: int):
    """(train x, train y, test x, test y): patches (n, 16, 4) standardised on the training images, labels (n,)."""
    import torch
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    x = torch.tensor(images, dtype=torch.float32).view(-1, 4, PATCH, 4, PATCH).permute(0, 1, 3, 2, 4)
    x, y = x.reshape(len(images), 16, PATCH * PATCH), torch.tensor(labels)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    train, test = order[:samples], order[samples:]
    mean, std = x[train].mean(), x[train].std()
    return (x[train] - mean) / std, y[train], (x[test] - mean) / std, y[test]


@dataclass(frozen=True)
class ViTRankOptions(Options):
    """The initialisation scale, the transformer's shape and its gradient descent."""

    alpha: float = option(0.01, "init_scale: every weight matrix starts at alpha times the GPT-2 init", gt=0, lt=1)
    layers: int = option(2, "transformer blocks", ge=1)
    heads: int = option(4, "attention heads per block", ge=1)
    d_model: int = option(16, "residual stream width", ge=1)
    samples: int = option(256, "training images (one full batch); the other digits are the test set", ge=10, le=1700)
    lr: float = option(0.5, "gradient-descent step (constant, no momentum)", gt=0)
    horizon: float = option(300.0, "training length in rescaled time lr x steps / log(1/alpha)", gt=0)

    def check(self) -> None:
        from harness.errors import UsageError

        if self.d_model % self.heads:
            raise UsageError(f"d_model={self.d_model} is not divisible by heads={self.heads}: choose heads dividing it")

    @property
    def steps(self) -> int:
        return max(1, math.ceil(self.horizon * math.log(1 / self.alpha) / self.lr))


def train(ctx, options: ViTRankOptions) -> dict:
    """Full-batch gradient descent with the rank probe attached; the logged series read back, and test accuracy."""
    import torch

    from harness.models import ModelConfig, build_model
    from harness.probes.rank import RankProbe
    from harness.training import TrainConfig

    x, y, x_test, y_test = digits(options.samples, ctx.seed_for("vit", "split"))
    torch.manual_seed(ctx.seed_for("vit", "init"))
    model = build_model(
        ModelConfig(
            vocab_size=2,  # unused: the tokens come in as embeddings
            n_layer=options.layers,
            n_head=options.heads,
            d_model=options.d_model,
            max_seq_len=17,
            bias=False,
            init_scale=options.alpha,
            head="cls",
            n_outputs=10,
            causal=False,
        )
    )
    model.patch = torch.nn.Linear(PATCH * PATCH, options.d_model, bias=False)  # a child, so probe keys stay L0...
    torch.nn.init.normal_(model.patch.weight)

    def logits(model, images):
        tokens = model.patch(images)  # (n, 16, C)
        return model(inputs_embeds=torch.cat([tokens, tokens.new_zeros(len(tokens), 1, tokens.shape[-1])], 1))

    def loss_fn(model, batch):
        return torch.nn.functional.cross_entropy(logits(model, batch["x"]), batch["y"])

    steps = options.steps
    every = max(1, steps // RECORDS)
    config = TrainConfig(
        steps=steps,
        batch_size=options.samples,
        lr=options.lr,
        optimizer="sgd",
        momentum=0.0,
        schedule="constant",
        grad_clip=0.0,
        log_every=every,
        seed=ctx.seed_for("vit", "batches"),
    )
    probe = RankProbe(top=options.d_model)
    trainer = ctx.trainer(
        model,
        config,
        lambda step, g: {"x": x, "y": y},
        name="vit",
        loss_fn=loss_fn,
        progress=False,
        probes=[probe],
        probe_every=every,
    )
    trainer.fit()
    with torch.no_grad():
        accuracy = float((logits(model, x_test).argmax(-1) == y_test).float().mean())
    from harness.plugins.incremental_rank.experiment import training_series

    return {**training_series(ctx, "vit"), "test_accuracy": accuracy}


def stable_ranks(maps: dict) -> dict:
    """``{"L0.H1/qk": (time,)}`` stable rank ||D||_F^2 / ||D||_2^2 of each map's Delta (0 while D = 0)."""
    import numpy as np

    return {key: (s**2).sum(1) / np.maximum(s[:, 0] ** 2, 1e-30) * (s[:, 0] > 0) for key, s in maps.items()}


@takes(ViTRankOptions)
class IncrementalRankViT:
    """A small ViT on scikit-learn's digits from scale alpha by gradient descent: loss, per-head rank of Delta."""

    name = "incremental_rank_vit"
    version = "1"
    primary_metric = "alignment_p"
    threads = 1  # torch threads the run sets: small problems, so a sweep runs its points side by side

    def __init__(self, options: ViTRankOptions):
        self.options = options

    @staticmethod
    def sweep_summary(points: list[dict], ctx) -> dict[str, float]:
        """Loss and mean stable rank against rescaled time, one line per alpha (see plots.vit_summary)."""
        from harness.plugins.incremental_rank.plots import vit_summary

        return vit_summary(points, ctx)

    def run(self, ctx) -> dict[str, float]:
        import numpy as np
        from harness.plugins.incremental_rank.analysis import staircase
        from harness.plugins.incremental_rank.experiment import spectra
        from harness.plugins.incremental_rank.plots import plot_loss, plot_spectra, plot_stable_ranks

        o = self.options
        result = train(ctx, o)
        clock = o.lr / math.log(1 / o.alpha)
        tau_loss, loss = result["loss_steps"] * clock, result["loss"]
        tau_probe = result["probe_steps"] * clock
        maps = spectra(result["readings"], o.d_model)
        metrics, parts = staircase(tau_loss, loss, tau_probe, maps)
        parts.pop("rows")
        floor = parts.pop("floor")
        ranks = stable_ranks(maps)
        record = {
            "alpha": o.alpha,
            "tau": tau_loss.tolist(),
            "loss": loss.tolist(),
            **parts,
            "tau_probe": tau_probe.tolist(),
            "stable_rank": {key: r.tolist() for key, r in ranks.items()},
            "spectra": {key: s[:, :8].tolist() for key, s in maps.items()},
        }
        ctx.path("vit_staircase.json").write_text(json.dumps(record))
        title = f"ViT on digits, alpha={o.alpha:g}"
        plot_loss(ctx.path("vit_loss.png"), record, title)
        plot_spectra(ctx.path("vit_singular_values.png"), record, floor, title)
        plot_stable_ranks(ctx.path("vit_stable_rank.png"), record, title)
        for kind in ("qk", "vo"):  # the stable rank at a quarter, half and all of training, mean over heads
            series = np.array([r for key, r in ranks.items() if key.endswith(kind)])  # (heads, time)
            for part, at in (("q1", len(tau_probe) // 4), ("q2", len(tau_probe) // 2), ("end", -1)):
                metrics[f"{kind}_stable_rank_{part}"] = float(series[:, at].mean())
        metrics["test_accuracy"] = result["test_accuracy"]
        return metrics
