"""The ``incremental_rank`` task: loss plateaus and rank increments under small initialisation (arXiv 2306.07042).

One run trains, from scale alpha, (1) the theorem's toy, one attention head with diagonal weights, and (2) a
1-layer standard transformer of the harness, both on the toy teacher's outputs (ranks of W_Q W_K^T and W_V W_O
known: ``teacher_qk`` and ``teacher_vo`` give their non-zero diagonal values), both by plain gradient descent.
It tracks the spectrum of Delta(W_Q W_K^T) and Delta(W_V W_O) with the rank probe, finds the loss plateaus and
the rank jumps (:mod:`staircase`) and reports how they line up. Sweep alpha to see the staircase sharpen.
"""

from __future__ import annotations

from harness.errors import UsageError


def parse_values(text: str, name: str) -> list[float]:
    """'2,0.6,0.2' -> [2.0, 0.6, 0.2] (positive, distinct sizes make distinct stages)."""
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) <= 0:
        raise UsageError(f"{name}={text}: give positive numbers separated by commas, e.g. {name}=2,0.6,0.2")
    return values


class IncrementalRank:
    """Diagonal-attention toy and a small transformer from scale alpha: plateaus, rank jumps, their alignment."""

    name = "incremental_rank"
    version = "1"
    primary_metric = "toy_aligned_fraction"

    def __init__(
        self,
        alpha: float = 1e-3,
        dim: int = 8,
        tokens: int = 8,
        samples: int = 128,
        teacher_qk: str | float = "1,0.3",
        teacher_vo: str | float = "2,0.6,0.2",
        lr: float = 0.05,
        horizon: float = 30.0,
        transformer: bool = True,
        heads: int = 2,
        transformer_lr: float = 0.1,
        transformer_horizon: float = 60.0,
    ):
        """
        Args:
            alpha: initialisation scale (the toy's weights are alpha N(0, 1); the transformer's init_scale).
            dim, tokens, samples: token dimension d, tokens per sequence N, sequences in the fixed training set.
            teacher_qk, teacher_vo: the teacher's non-zero diagonal values (their counts are its ranks).
            lr: GD step of the toy; horizon: training length in rescaled time lr x steps / log(1/alpha).
            transformer: also train the standard transformer; heads, transformer_lr, transformer_horizon: its
                heads, GD step and training length (its weights start at 0.02 alpha, so its stages come later).
        """
        if not 0 < alpha < 1:
            raise UsageError(f"alpha={alpha}: give an initialisation scale in (0, 1), e.g. alpha=0.001")
        for name, value in (("dim", dim), ("tokens", tokens), ("samples", samples), ("heads", heads)):
            if value < 1:
                raise UsageError(f"{name}={value}: give a positive integer")
        for name, value in (
            ("lr", lr),
            ("horizon", horizon),
            ("transformer_lr", transformer_lr),
            ("transformer_horizon", transformer_horizon),
        ):
            if not value > 0:
                raise UsageError(f"{name}={value}: give a positive number")
        qk, vo = parse_values(teacher_qk, "teacher_qk"), parse_values(teacher_vo, "teacher_vo")
        if max(len(qk), len(vo)) > dim:
            raise UsageError(f"the teacher has more non-zero values than dim={dim}: raise dim or give fewer")
        if dim % heads:
            raise UsageError(f"dim={dim} is not divisible by heads={heads}: choose heads dividing dim")
        self.args = {
            "alpha": alpha,
            "dim": dim,
            "tokens": tokens,
            "samples": samples,
            "teacher_qk": qk,
            "teacher_vo": vo,
            "lr": lr,
            "horizon": horizon,
            "heads": heads,
            "transformer_lr": transformer_lr,
            "transformer_horizon": transformer_horizon,
        }
        self.transformer = transformer

    @staticmethod
    def sweep_summary(points: list[dict], ctx) -> dict[str, float]:
        """Loss against rescaled time for every alpha on one figure (see :func:`plots.sweep_summary`)."""
        from harness.plugins.incremental_rank.plots import sweep_summary

        return sweep_summary(points, ctx)

    def run(self, ctx) -> dict[str, float]:
        import torch
        from harness.plugins.incremental_rank.analysis import analyse
        from harness.plugins.incremental_rank.experiment import run_toy, run_transformer

        torch.set_num_threads(1)
        metrics = analyse(ctx, "toy", run_toy(ctx, self.args), self.args)
        if self.transformer:
            metrics.update(analyse(ctx, "transformer", run_transformer(ctx, self.args), self.args))
        return metrics
