"""The ``distill`` task: distil a trained network into a decision tree with linear probes.

By default it draws a random depth-r tree on {+1, -1}^d, trains a residual MLP on it and distils the network;
with ``checkpoint=PATH`` it distils any scratch checkpoint (MLP or ResidualMLP) whose inputs are Boolean vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import UsageError
from harness.options import Options, option, takes


@dataclass(frozen=True)
class DistillOptions(Options):
    """The target tree, the distillation's probes and search, and the network trained on the tree."""

    d: int = option(20, "input dimension (x in {+1, -1}^d)", ge=1)
    r: int = option(
        2, "depth of the target tree and the most of the distilled one (the dynamic program stops at 6)", ge=1, le=6
    )
    beam: int = option(
        10, "ANDs kept per level of the beam search (each gets its 2(d - level) extensions probed)", ge=1
    )
    beams: str = option(
        "",
        "more beam widths to distil the same network at, e.g. 10,50,100,200 (each AND is probed once for all); "
        "metrics <name>@beam=B beside those at beam",
    )
    samples: int = option(2000, "inputs the probes and the dynamic program are fitted on", ge=1)
    heldout: int = option(2000, "inputs the probes are scored on", ge=1)
    ridge: float = option(10.0, "ridge penalty of the probes (times the number of samples)", gt=0)
    width: int = option(128, "the network's residual width (and hidden width of its blocks)", ge=1)
    blocks: int = option(2, "residual blocks", ge=1)
    steps: int = option(3000, "SGD steps on fresh samples", ge=1)
    batch_size: int = option(128, "samples per step", ge=1)
    lr: float = option(0.05, "peak SGD learning rate (momentum 0.9, cosine schedule)", gt=0)
    test_size: int = option(10000, "fresh inputs for the accuracies and agreements", ge=1)
    checkpoint: str = option(
        "", "distil this scratch checkpoint folder instead of training (d comes from it; r is the depth)"
    )
    family: str = option(
        "opposite",
        "target family: opposite (the leaves under every last split differ) or independent (each leaf random, as "
        "in the reference)",
        choices=("opposite", "independent"),
    )
    threads: int = option(1, "torch threads", ge=1)

    def widths(self) -> list[int]:
        """``beam`` first, then the other ``beams``."""
        return list(dict.fromkeys([self.beam] + [int(w) for w in self.beams.split(",") if w.strip()]))

    def check(self) -> None:
        if self.beams and not all(w.strip().isdigit() and int(w) >= 1 for w in self.beams.split(",")):
            raise UsageError(f"beams={self.beams}: give beam widths >= 1 separated by commas, e.g. beams=10,50,100")
        if self.r > self.d:
            raise UsageError(f"r={self.r} is larger than d={self.d}: a tree tests each variable at most once per path")
        if self.checkpoint:
            from pathlib import Path

            if not (Path(self.checkpoint) / "config.json").exists():
                raise UsageError(
                    f"checkpoint={self.checkpoint}: no checkpoint folder (config.json) there; give the "
                    "folder a scratch run saved, e.g. RUN_DIR/network/checkpoint"
                )


@takes(DistillOptions)
class DistillTrees:
    """PAC-distillation of a network into a depth <= r decision tree (arXiv 2403.09053); see experiment.py."""

    name = "distill"
    version = "1"
    primary_metric = "agreement"

    def __init__(self, options: DistillOptions):
        self.options, self.threads = options, options.threads

    def run(self, ctx) -> dict[str, float]:
        from harness.plugins.distill.experiment import run_distill

        return run_distill(self.options, ctx)

    @staticmethod
    def sweep_summary(points: list[dict], ctx) -> dict[str, float]:
        from harness.plugins.distill.experiment import agreement_table

        return agreement_table(points, ctx)
