"""The two trainings: the diagonal toy and a small standard transformer, both from scale alpha, both by plain GD.

Both go through the shared Trainer (sgd, momentum 0, constant lr, no clipping, one fixed full batch: gradient
descent on the empirical loss, a discretised gradient flow) with the ``rank`` probe attached, which reads the toy's
diagonal maps through ``effective_maps`` and the transformer's per-head W_Q W_K^T / sqrt(d_head) and W_V W_O.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from harness.plugins.incremental_rank.toy import ToyModel, diagonal_attention, teacher_diagonals

from harness.models import ModelConfig, build_model
from harness.probes.rank import RankProbe
from harness.training import TrainConfig, make_probes

RECORDS = 400  # loss and spectrum snapshots per training

if TYPE_CHECKING:
    from harness.plugins.incremental_rank.task import IncrementalRankOptions


def make_data(options: IncrementalRankOptions, seed: int) -> dict[str, torch.Tensor]:
    """Gaussian sequences (n, N, d) and the teacher's outputs on them."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(options.samples, options.tokens, options.dim, generator=g)
    qk, vo = teacher_diagonals(options.dim, options.qk, options.vo)
    return {"x": x, "y": diagonal_attention(x, qk, vo)}


def steps_for(alpha: float, lr: float, horizon: float) -> int:
    """GD steps that cover ``horizon`` units of rescaled time tau = lr x step / log(1/alpha)."""
    return max(1, math.ceil(horizon * math.log(1 / alpha) / lr))


def train(ctx, model: torch.nn.Module, data: dict, lr: float, steps: int, name: str, top: int) -> dict:
    """Full-batch GD on 1/2 mean ||f(X) - Y||^2; returns the logged loss and rank-probe series.

    The series are read back from the run's metrics.jsonl, so a resumed training still has its whole history.
    """
    every = max(1, steps // RECORDS)

    def loss_fn(model, batch):
        out = model(batch["x"]) if isinstance(model, ToyModel) else model(inputs_embeds=batch["x"])
        return 0.5 * (out - batch["y"]).square().sum(-1).mean()

    config = TrainConfig(
        steps=steps,
        batch_size=len(data["x"]),
        lr=lr,
        optimizer="sgd",
        momentum=0.0,
        schedule="constant",
        grad_clip=0.0,
        log_every=every,
        seed=ctx.seed_for(name, "batches"),
    )
    probes = [RankProbe(top=top), *(p for p in make_probes(ctx.probes) if p.name != "rank")]  # --probe extras
    trainer = ctx.trainer(
        model,
        config,
        lambda step, g: data,
        name=name,
        loss_fn=loss_fn,
        progress=False,
        probes=probes,
        probe_every=every,
    )
    trainer.fit()
    return training_series(ctx, name)


def training_series(ctx, name: str) -> dict:
    """The training named ``name`` read back from the run's series: its loss curve and the rank probe's readings."""
    rows: dict[int, dict] = {}
    for row in ctx.run.series():
        values = {k.removeprefix(f"{name}/"): v for k, v in row.items() if k.startswith(f"{name}/")}
        rows.setdefault(row["step"], {}).update(values)
    losses = sorted((s, r["train_loss"]) for s, r in rows.items() if "train_loss" in r)
    probed = sorted((s, r) for s, r in rows.items() if any(k.startswith("rank/") for k in r))
    return {
        "loss_steps": np.array([s for s, _ in losses]),
        "loss": np.array([v for _, v in losses]),
        "probe_steps": np.array([s for s, _ in probed]),
        "readings": [r for _, r in probed],
    }


def spectra(readings: list[dict], top: int) -> dict[str, np.ndarray]:
    """``{"L0.H1/qk": (time, top)}`` singular values of Delta per map, from the probe's readings."""
    keys = sorted({k.rsplit("/", 1)[0] for k in readings[0] if k.endswith("/sv0")})
    return {
        key.removeprefix("rank/"): np.array([[r.get(f"{key}/sv{i}", 0.0) for i in range(top)] for r in readings])
        for key in keys
    }


def run_toy(ctx, options: IncrementalRankOptions) -> dict:
    torch.manual_seed(ctx.seed_for("toy", "init"))
    model = ToyModel(options.dim, options.alpha, torch.Generator().manual_seed(ctx.seed_for("toy", "init")))
    data = make_data(options, ctx.seed_for("data"))
    steps = steps_for(options.alpha, options.lr, options.horizon)
    return train(ctx, model, data, options.lr, steps, "toy", top=options.dim)


def run_transformer(ctx, options: IncrementalRankOptions) -> dict:
    """A 1-layer pre-LN transformer (LayerNorm, GELU FFN, learned positions, heads of the harness) on the same data.

    Its input is the token vectors themselves (``inputs_embeds``), its LM head reads out d values per position;
    every weight matrix starts at init_scale = alpha times the GPT-2 init.
    """
    torch.manual_seed(ctx.seed_for("transformer", "init"))
    config = ModelConfig(
        vocab_size=options.dim,
        n_layer=1,
        n_head=options.heads,
        d_model=options.dim,
        max_seq_len=options.tokens,
        causal=False,
        bias=False,
        init_scale=options.alpha,
    )
    model = build_model(config)
    data = make_data(options, ctx.seed_for("data"))
    steps = steps_for(options.alpha, options.transformer_lr, options.transformer_horizon)
    return train(ctx, model, data, options.transformer_lr, steps, "transformer", top=options.dim)
