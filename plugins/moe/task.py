"""The ``moe_granularity`` task: can a student MoE of granularity k fit a random teacher MoE of granularity k_t?

One run trains one student (k, experts) against the teacher that the run seed draws; a sweep over k and experts
(tasks/moe_granularity.yaml) gives the paper's figure: normalized MSE against total experts, one line per k.
"""

from __future__ import annotations

from harness.errors import UsageError


class MoEGranularity:
    """Student-teacher MoE regression on Gaussian inputs (arXiv 2505.06839); see :mod:`experiment` for choices.

    Args:
        d: input dimension (inputs x ~ N(0, I_d), scalar output).
        teacher_k: the teacher's granularity k_t (active experts).
        teacher_experts: the teacher's total experts (0: 2 * teacher_k, the paper's setting).
        k: the student's granularity.
        experts: the student's total experts.
        active_hidden: hidden ReLU units one input uses, the same for teacher and students and every k.
        steps: Adam updates, each on a fresh batch.
        batch_size: fresh samples per update.
        lr: peak learning rate (AdamW, 5% warmup, cosine decay).
        test_size: held-out inputs for the normalized MSE.
        eval_every: steps between test evaluations (the metric is the best one).
        init_at_teacher: start the student at the teacher's weights (needs k, experts equal to the teacher's).
        freeze: "gate" or "experts": start that part at the teacher's and keep it fixed, so only the other part is
            learnt (needs the teacher's shape; tells optimisation from expressivity); "" trains everything.
        threads: torch threads.
    """

    name = "moe_granularity"
    version = "1"
    primary_metric = "normalized_mse"

    def __init__(
        self,
        d: int = 16,
        teacher_k: int = 8,
        teacher_experts: int = 0,
        k: int = 8,
        experts: int = 16,
        active_hidden: int = 64,
        steps: int = 3000,
        batch_size: int = 256,
        lr: float = 0.01,
        test_size: int = 4096,
        eval_every: int = 100,
        init_at_teacher: bool = False,
        freeze: str = "",
        threads: int = 1,
    ):
        from harness.plugins.moe.layer import MoEConfig

        for name, value in (
            ("d", d),
            ("teacher_k", teacher_k),
            ("k", k),
            ("experts", experts),
            ("active_hidden", active_hidden),
            ("steps", steps),
            ("batch_size", batch_size),
            ("test_size", test_size),
            ("eval_every", eval_every),
            ("threads", threads),
        ):
            if value < 1:
                raise UsageError(f"{name}={value}: give a positive number")
        if teacher_experts < 0:
            raise UsageError(f"teacher_experts={teacher_experts}: give a positive number (0: 2 * teacher_k)")
        if lr <= 0:
            raise UsageError(f"lr={lr}: give a positive learning rate")
        self.teacher = MoEConfig(d, 1, teacher_experts or 2 * teacher_k, teacher_k, active_hidden)
        self.student = MoEConfig(d, 1, experts, k, active_hidden)
        if freeze not in ("", "gate", "experts"):
            raise UsageError(f"freeze={freeze}: choose gate, experts or leave it empty")
        if (init_at_teacher or freeze) and self.student != self.teacher:
            raise UsageError(
                "init_at_teacher and freeze need the teacher's shape: set k=teacher_k and experts=teacher_experts"
            )
        self.init_at_teacher, self.freeze = init_at_teacher, freeze
        self.training = {"steps": steps, "batch_size": batch_size, "lr": lr, "eval_every": eval_every}
        self.test_size, self.threads = test_size, threads

    def run(self, ctx) -> dict[str, float]:
        from harness.plugins.moe.experiment import train_student

        return train_student(self, ctx)

    @staticmethod
    def sweep_summary(points: list[dict], ctx) -> dict[str, float]:
        from harness.plugins.moe.experiment import summarise_sweep

        return summarise_sweep(points, ctx)
