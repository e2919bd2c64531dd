"""The ``moe_granularity`` task: can a student MoE of granularity k fit a random teacher MoE of granularity k_t?

One run trains one student (k, experts) against the teacher that the run seed draws; a sweep over k and experts
(tasks/moe_granularity.yaml) gives the paper's figure: normalized MSE against total experts, one line per k.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import UsageError
from harness.options import Options, option, takes

FREEZE = ("gate", "experts", "nothing", "")


@dataclass(frozen=True)
class MoEOptions(Options):
    """What one student-teacher run takes: shapes, training and evaluation."""

    d: int = option(16, "input dimension (inputs x ~ N(0, I_d))", ge=1)
    d_out: int = option(1, "output dimension of teacher and students (1: a scalar teacher)", ge=1)
    teacher_k: int = option(8, "the teacher's granularity k_t (active experts)", ge=1)
    teacher_experts: int = option(0, "the teacher's total experts (0: 2 * teacher_k, the paper's setting)", ge=0)
    k: int = option(8, "the student's granularity", ge=1)
    experts: int = option(16, "the student's total experts", ge=1)
    active_hidden: int = option(
        64, "the student's active hidden units: ReLU units one input uses, over its k experts", ge=1
    )
    teacher_hidden: int = option(
        0, "the teacher's active hidden units (0: active_hidden; larger active_hidden makes students wider)", ge=0
    )
    steps: int = option(3000, "Adam updates, each on a fresh batch", ge=1)
    batch_size: int = option(256, "fresh samples per update", ge=1)
    lr: float = option(0.01, "peak learning rate (AdamW, 5% warmup, cosine decay)", gt=0)
    test_size: int = option(4096, "held-out inputs for the normalized MSE", ge=1)
    eval_every: int = option(100, "steps between test evaluations (the metric is the best one)", ge=1)
    init_at_teacher: bool = option(False, "start the student at the teacher's weights (needs the teacher's shape)")
    freeze: str = option(
        "",
        "start the gate or the experts at the teacher's and keep them fixed, so only the other part is learnt "
        "(needs the teacher's shape; tells optimisation from expressivity); 'nothing' or '' trains everything",
        choices=FREEZE,
    )
    threads: int = option(1, "torch threads", ge=1)
    device: str = option("cpu", "cpu or cuda[:i] (inputs are drawn on the CPU either way, so a seed's data agree)")

    def check(self) -> None:
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise UsageError(f"device={self.device}: choose cpu or cuda")
        if (self.init_at_teacher or self.freeze not in ("", "nothing")) and self.student != self.teacher:
            raise UsageError(
                "init_at_teacher and freeze need the teacher's shape: set k=teacher_k, experts=teacher_experts "
                "and teacher_hidden=0"
            )

    @property
    def teacher(self):
        from harness.plugins.moe.layer import MoEConfig

        hidden = self.teacher_hidden or self.active_hidden
        return MoEConfig(self.d, self.d_out, self.teacher_experts or 2 * self.teacher_k, self.teacher_k, hidden)

    @property
    def student(self):
        from harness.plugins.moe.layer import MoEConfig

        return MoEConfig(self.d, self.d_out, self.experts, self.k, self.active_hidden)


@takes(MoEOptions)
class MoEGranularity:
    """Student-teacher MoE regression on Gaussian inputs (arXiv 2505.06839); the choices are in experiment.py."""

    name = "moe_granularity"
    version = "1"
    primary_metric = "normalized_mse"

    def __init__(self, options: MoEOptions):
        self.options = options
        self.teacher, self.student, self.threads = options.teacher, options.student, options.threads

    def run(self, ctx) -> dict[str, float]:
        from harness.plugins.moe.experiment import train_student

        return train_student(self, ctx)

    @staticmethod
    def sweep_summary(points: list[dict], ctx) -> dict[str, float]:
        from harness.plugins.moe.experiment import summarise_sweep

        return summarise_sweep(points, ctx)
