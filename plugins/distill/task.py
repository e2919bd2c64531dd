"""The ``distill`` task: distil a trained network into a decision tree with linear probes.

By default it draws a random depth-r tree on {+1, -1}^d, trains a residual MLP on it and distils the network;
with ``checkpoint=PATH`` it distils any scratch checkpoint (MLP or ResidualMLP) whose inputs are Boolean vectors.
"""

from __future__ import annotations

from harness.errors import UsageError


class DistillTrees:
    """PAC-distillation of a network into a depth <= r decision tree (arXiv 2403.09053); see :mod:`experiment`.

    Args:
        d: input dimension (x in {+1, -1}^d).
        r: depth of the target tree and the largest depth of the distilled one.
        beam: ANDs kept per level of the beam search (each gets its 2(d - level) extensions probed).
        samples: inputs the probes and the dynamic program are fitted on.
        heldout: inputs the probes are scored on.
        ridge: ridge penalty of the probes (times the number of samples).
        width: the network's residual width (and hidden width of its blocks).
        blocks: residual blocks.
        steps: SGD steps on fresh samples.
        batch_size: samples per step.
        lr: peak SGD learning rate (momentum 0.9, cosine schedule).
        test_size: fresh inputs for the accuracies and agreements.
        checkpoint: distil this scratch checkpoint folder instead of training (d comes from it; r is the depth).
        threads: torch threads.
    """

    name = "distill"
    version = "1"
    primary_metric = "agreement"

    def __init__(
        self,
        d: int = 20,
        r: int = 2,
        beam: int = 10,
        samples: int = 2000,
        heldout: int = 2000,
        ridge: float = 10.0,
        width: int = 128,
        blocks: int = 2,
        steps: int = 3000,
        batch_size: int = 128,
        lr: float = 0.05,
        test_size: int = 10000,
        checkpoint: str = "",
        threads: int = 1,
    ):
        for name, value in (
            ("d", d),
            ("r", r),
            ("beam", beam),
            ("samples", samples),
            ("heldout", heldout),
            ("width", width),
            ("blocks", blocks),
            ("steps", steps),
            ("batch_size", batch_size),
            ("test_size", test_size),
            ("threads", threads),
        ):
            if value < 1:
                raise UsageError(f"{name}={value}: give a positive number")
        if r > d:
            raise UsageError(f"r={r} is larger than d={d}: a tree tests each variable at most once per path")
        if r > 6:
            raise UsageError(f"r={r}: the dynamic program is sized for depths up to 6")
        if ridge <= 0 or lr <= 0:
            raise UsageError(f"ridge={ridge}, lr={lr}: give positive numbers")
        if checkpoint:
            from pathlib import Path

            if not (Path(checkpoint) / "config.json").exists():
                raise UsageError(
                    f"checkpoint={checkpoint}: no checkpoint folder (config.json) there; give the "
                    "folder a scratch run saved, e.g. RUN_DIR/network/checkpoint"
                )
        self.d, self.r, self.beam, self.samples, self.heldout, self.ridge = d, r, beam, samples, heldout, ridge
        self.network = {"width": width, "blocks": blocks, "steps": steps, "batch_size": batch_size, "lr": lr}
        self.test_size, self.checkpoint, self.threads = test_size, checkpoint, threads

    def run(self, ctx) -> dict[str, float]:
        from harness.plugins.distill.experiment import run_distill

        return run_distill(self, ctx)

    @staticmethod
    def sweep_summary(points: list[dict], ctx) -> dict[str, float]:
        from harness.plugins.distill.experiment import agreement_table

        return agreement_table(points, ctx)
