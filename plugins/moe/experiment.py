"""Train one student MoE against a frozen random teacher MoE and score it by normalized MSE.

Choices (the paper's setting where /work/shared/papers gives it, ours where not):
- Teacher: a random MoE with ``m_t = 2 k_t`` experts, drawn at :meth:`MoE.reset_parameters`' init from the stream
  ``("teacher", ...)`` of the run seed, frozen. Every point of a sweep with the same seed sees the same teacher.
- Inputs x ~ N(0, I_d); the target is the teacher's scalar output, noiseless.
- Student: same family, its own k and m, the same active hidden units (so the same active expert parameters),
  initialised like the teacher from the stream ``("student", ...)``.
- Training: AdamW (no weight decay), 5% warmup then cosine, gradient clipping at 1, fresh samples every step
  (online, so no overfitting), through the harness Trainer.
- Metric: test MSE / mean(y^2) on a fixed held-out set (the MSE of predicting zero), the best over the evaluations
  during training (``normalized_mse``) and the last one (``final_normalized_mse``).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from harness.plugins.moe.layer import MoE, MoEConfig, active_parameters

from harness.seeding import generator
from harness.training import TrainConfig

TRAINER_NAME = "student"


def make_teacher(config: MoEConfig, seed: int) -> MoE:
    teacher = MoE(config, generator=generator(seed, "teacher", config.d_in, config.n_experts, config.top_k))
    return teacher.requires_grad_(False).eval()


def sample(teacher: MoE, n: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """n Gaussian inputs (n, d) and the teacher's outputs (n, 1)."""
    x = torch.randn(n, teacher.config.d_in, generator=gen)
    with torch.no_grad():
        y = teacher(x)
    return {"input_ids": x, "targets": y}


def mse_loss(model: MoE, batch: dict) -> torch.Tensor:
    return F.mse_loss(model(batch["input_ids"]), batch["targets"])


def normalized_mse(model: MoE, test: dict) -> float:
    """Test MSE divided by the MSE of predicting zero."""
    with torch.no_grad():
        error = (model(test["input_ids"]) - test["targets"]).pow(2).mean()
    return float(error / test["targets"].pow(2).mean())


def train_student(task, ctx) -> dict[str, float]:
    torch.set_num_threads(task.threads)
    teacher = make_teacher(task.teacher, ctx.seed)
    test = sample(teacher, task.test_size, generator(ctx.seed, "test"))
    student = MoE(task.student, generator=generator(ctx.seed, "student", task.student.n_experts, task.student.top_k))
    if task.init_at_teacher:
        student.load_state_dict(teacher.state_dict())
    t = task.training
    config = TrainConfig(steps=t["steps"], batch_size=t["batch_size"], lr=t["lr"], warmup=0.05, schedule="cosine",
                         eval_every=t["eval_every"], log_every=t["eval_every"], seed=ctx.seed_for("batches"))
    began = time.perf_counter()
    trainer = ctx.trainer(student, config, lambda step, gen: sample(teacher, t["batch_size"], gen),
                          name=TRAINER_NAME, loss_fn=mse_loss, progress=False,
                          evaluate=lambda model, step: {"normalized_mse": normalized_mse(model, test)})
    final = trainer.fit()
    history = [r[f"{TRAINER_NAME}/normalized_mse"] for r in ctx.run.series()
               if f"{TRAINER_NAME}/normalized_mse" in r]
    counts = active_parameters(student)
    return {
        "normalized_mse": min(history),
        "final_normalized_mse": final["normalized_mse"],
        "active_expert_parameters": float(counts["expert"]),
        "gate_parameters": float(counts["gate"]),
        "train_time_s": time.perf_counter() - began,
    }


def summarise_sweep(points: list[dict], ctx) -> dict[str, float]:
    """Per student k: the best normalized MSE over total experts; the plot of the paper's figure."""
    from harness.evaluation import mean_stderr
    from harness.report import plot_lines

    by_k: dict[int, dict[int, list[float]]] = {}
    for point in points:
        args = point["args"]
        by_k.setdefault(int(args["k"]), {}).setdefault(int(args["experts"]), []).append(
            point["metrics"]["normalized_mse"])
    series, errors, out = {}, {}, {}
    teacher_k = int(points[0]["args"]["teacher_k"]) if points else 0
    for k in sorted(by_k):
        experts = sorted(by_k[k])
        stats = [mean_stderr(by_k[k][m]) for m in experts]
        label = f"k={k}" + (" (teacher)" if k == teacher_k else "")
        series[label] = (experts, [s[0] for s in stats])
        errors[label] = [s[1] for s in stats]
        out[f"best_normalized_mse@k={k}"] = min(s[0] for s in stats)
    plot_lines(ctx.path("granularity.png"), series, xlabel="total experts m",
               ylabel="normalized test MSE (best over training)", logx=True, logy=True, errors=errors,
               title=f"students vs a teacher of granularity k={teacher_k}")
    return out
