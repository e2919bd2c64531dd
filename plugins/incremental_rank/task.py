"""The ``incremental_rank`` task: loss plateaus and rank increments under small initialisation (arXiv 2306.07042).

One run trains, from scale alpha, (1) the theorem's toy, one attention head with diagonal weights, and (2) a
1-layer standard transformer of the harness, both on the toy teacher's outputs (ranks of W_Q W_K^T and W_V W_O
known: ``teacher_qk`` and ``teacher_vo`` give their non-zero diagonal values), both by plain gradient descent.
It tracks the spectrum of Delta(W_Q W_K^T) and Delta(W_V W_O) with the rank probe, finds the loss plateaus and
the rank jumps (staircase.py) and tests whether the jumps sit at the loss drops (a p-value against jump times
drawn at random). Sweep alpha to see the staircase sharpen.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import UsageError
from harness.options import Options, option, takes


def parse_values(text: str, name: str) -> list[float]:
    """'2,0.6,0.2' -> [2.0, 0.6, 0.2] (positive, distinct sizes make distinct stages)."""
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) <= 0:
        raise UsageError(f"{name}={text}: give positive numbers separated by commas, e.g. {name}=2,0.6,0.2")
    return values


@dataclass(frozen=True)
class IncrementalRankOptions(Options):
    """The scale, the data and teacher, and the two models' gradient descent."""

    alpha: float = option(
        1e-3, "initialisation scale (the toy's weights are alpha N(0, 1); the transformer's init_scale)", gt=0, lt=1
    )
    dim: int = option(8, "token dimension d", ge=1)
    tokens: int = option(8, "tokens per sequence N", ge=1)
    samples: int = option(128, "sequences in the fixed training set", ge=1)
    teacher_qk: str | float = option("1,0.3", "the teacher's non-zero diagonal values of W_Q W_K^T (count = rank)")
    teacher_vo: str | float = option("2,0.6,0.2", "the teacher's non-zero diagonal values of W_V W_O (count = rank)")
    lr: float = option(0.05, "GD step of the toy", gt=0)
    horizon: float = option(30.0, "the toy's training length in rescaled time lr x steps / log(1/alpha)", gt=0)
    transformer: bool = option(True, "also train the standard transformer (weights start at 0.02 alpha)")
    heads: int = option(2, "the transformer's heads", ge=1)
    transformer_lr: float = option(0.1, "the transformer's GD step", gt=0)
    transformer_horizon: float = option(60.0, "the transformer's training length in rescaled time", gt=0)

    def check(self) -> None:
        if max(len(self.qk), len(self.vo)) > self.dim:
            raise UsageError(f"the teacher has more non-zero values than dim={self.dim}: raise dim or give fewer")
        if self.dim % self.heads:
            raise UsageError(f"dim={self.dim} is not divisible by heads={self.heads}: choose heads dividing dim")

    @property
    def qk(self) -> list[float]:
        return parse_values(self.teacher_qk, "teacher_qk")

    @property
    def vo(self) -> list[float]:
        return parse_values(self.teacher_vo, "teacher_vo")


@takes(IncrementalRankOptions)
class IncrementalRank:
    """Diagonal-attention toy and a small transformer from scale alpha: plateaus, rank jumps, their alignment."""

    name = "incremental_rank"
    threads = 1  # torch threads the run sets: small problems, so a sweep runs its points side by side
    version = "1"
    primary_metric = "toy_alignment_p"

    def __init__(self, options: IncrementalRankOptions):
        self.options = options

    @staticmethod
    def sweep_summary(points: list[dict], ctx) -> dict[str, float]:
        """Loss against rescaled time for every alpha on one figure (see plots.sweep_summary)."""
        from harness.plugins.incremental_rank.plots import sweep_summary

        return sweep_summary(points, ctx)

    def run(self, ctx) -> dict[str, float]:
        from harness.plugins.incremental_rank.analysis import analyse
        from harness.plugins.incremental_rank.experiment import run_toy, run_transformer

        o = self.options
        metrics = analyse(ctx, "toy", run_toy(ctx, o), o)
        if o.transformer:
            metrics.update(analyse(ctx, "transformer", run_transformer(ctx, o), o))
        return metrics
