"""Train one student MoE against a frozen random teacher MoE and score it by normalized MSE.

Choices (the paper's setting where /work/shared/papers gives it, ours where not):
- Teacher: a random MoE with ``m_t = 2 k_t`` experts, drawn at :meth:`MoE.reset_parameters`' init from the stream
  ``("teacher", ...)`` of the run seed, frozen. Every point of a sweep with the same seed sees the same teacher.
- Inputs x ~ N(0, I_d); the target is the teacher's output, noiseless: a scalar (``d_out=1``, the first records)
  or a vector (``d_out > 1``, every expert writing its own direction, so the mixture's weights show in the output).
- Student: same family, its own k and m, initialised like the teacher from the stream ``("student", ...)``. Its
  active hidden units are the same for every k; by default also the teacher's, and with ``teacher_hidden`` smaller
  than ``active_hidden`` the students are wider than the teacher, as in the paper (preset moe_heatmap: 4x), so a
  student at the teacher's granularity has room to spare and coarser ones fail for want of routing, not width.
- Training: AdamW (no weight decay), 5% warmup then cosine, gradient clipping at 1, fresh samples every step
  (online, so no overfitting), through the harness Trainer.
- Metric: test MSE / mean(y^2) on a fixed held-out set (the MSE of predicting zero), the best over the evaluations
  during training (``normalized_mse``) and the last one (``final_normalized_mse``).

Why the preset's teacher has k_t = 8 of 16 experts: a student with k = 1 can copy the routing of a (m_t, k_t)
teacher only with one expert per top-k set (gate vector = the sum of the set's gate vectors, since the top-k set
maximises the summed logits), i.e. C(m_t, k_t) experts. For k_t = 4 of 8 that is 70, within reach of the
students' 16-64 experts; for k_t = 8 of 16 it is 12,870. At this scale a student with the teacher's own shape
learns its experts almost exactly when its gate is frozen at the teacher's, and its gate when its experts are
(``freeze=gate|experts``, preset moe_frozen), but ends near 0.04 when it learns both: joint gate-and-expert
learning within the budget, not expressivity, limits the students at or above the teacher's granularity here.

The heatmap (preset moe_heatmap) runs teachers of k_t = 2, 4 and 8 with students 4x wider than the teacher, d = 32
and 4 outputs; the budget check (preset moe_budget) reruns its k_t = 4 row at k = 2 and 4 with twice the steps.
Best and final errors agree there (the cosine schedule ends at lr 0), so the budget, not the choice of the best
evaluation, is what a longer run changes; summary.py computes the separations the docs page reports.
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
    """n Gaussian inputs (n, d), drawn on the CPU and moved to the teacher's device, and the teacher's outputs."""
    x = torch.randn(n, teacher.config.d_in, generator=gen).to(teacher.gate.weight.device)
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


def freeze_at_teacher(student: MoE, teacher: MoE, part: str) -> None:
    """Copy the gate or the experts of the teacher into the student and stop them from training."""
    names = {"gate": ["gate.weight"], "experts": ["w_in", "b_in", "w_out"], "nothing": [], "": []}[part]
    params, source = dict(student.named_parameters()), dict(teacher.named_parameters())
    with torch.no_grad():
        for name in names:
            params[name].copy_(source[name]).requires_grad_(False)


def train_student(task, ctx) -> dict[str, float]:
    o = task.options
    teacher = make_teacher(task.teacher, ctx.seed).to(o.device)
    test = sample(teacher, o.test_size, generator(ctx.seed, "test"))
    student = MoE(task.student, generator=generator(ctx.seed, "student", task.student.n_experts, task.student.top_k))
    if o.init_at_teacher:
        student.load_state_dict(teacher.state_dict())
    freeze_at_teacher(student, teacher, o.freeze)
    config = TrainConfig(
        steps=o.steps,
        batch_size=o.batch_size,
        lr=o.lr,
        warmup=0.05,
        schedule="cosine",
        eval_every=o.eval_every,
        log_every=o.eval_every,
        seed=ctx.seed_for("batches"),
        device=o.device,
    )
    began = time.perf_counter()
    trainer = ctx.trainer(
        student,
        config,
        lambda step, gen: sample(teacher, o.batch_size, gen),
        name=TRAINER_NAME,
        loss_fn=mse_loss,
        progress=False,
        evaluate=lambda model, step: {"normalized_mse": normalized_mse(model, test)},
    )
    final = trainer.fit()
    history = [r[f"{TRAINER_NAME}/normalized_mse"] for r in ctx.run.series() if f"{TRAINER_NAME}/normalized_mse" in r]
    counts = active_parameters(student)
    return {
        "normalized_mse": min(history),
        "final_normalized_mse": final["normalized_mse"],
        "active_expert_parameters": float(counts["expert"]),
        "gate_parameters": float(counts["gate"]),
        "train_time_s": time.perf_counter() - began,
    }


def summarise_sweep(points: list[dict], ctx) -> dict[str, float]:
    """Per student k: the best normalized MSE over total experts, and its excess over the teacher-granularity
    student at the same experts and seed (a paired difference averaged over experts per seed, then the mean, stderr
    and 95% t interval over seeds); the figure."""
    from harness.evaluation import mean_stderr
    from harness.report import plot_lines
    from harness.stats import mean_ci

    varied = {a for a in points[0]["args"] if len({str(p["args"].get(a)) for p in points}) > 1} if points else set()
    if "teacher_k" in varied and varied <= {"teacher_k", "k"}:  # the k_student x k_teacher heatmap
        from harness.plugins.moe.summary import heatmap_summary

        return heatmap_summary(points, ctx)
    if varied == {"k", "steps"}:  # the budget check
        from harness.plugins.moe.summary import budget_summary

        return budget_summary(points)
    if not varied <= {"k", "experts"}:  # a sweep over other args (freeze, steps, ...): no k x experts figure
        return {}
    runs = {(int(p["args"]["k"]), int(p["args"]["experts"]), p["seed"]): p["metrics"]["normalized_mse"] for p in points}
    teacher_k = int(points[0]["args"]["teacher_k"]) if points else 0
    series, errors, out = {}, {}, {}
    for k in sorted({k for k, _, _ in runs}):
        experts = sorted({m for kk, m, _ in runs if kk == k})
        stats = [mean_stderr([v for (kk, m, _), v in runs.items() if kk == k and m == e]) for e in experts]
        label = f"k={k}" + (" (teacher's)" if k == teacher_k else "")
        series[label], errors[label] = (experts, [s[0] for s in stats]), [s[1] for s in stats]
        out[f"best_normalized_mse@k={k}"] = min(s[0] for s in stats)
        by_seed: dict[int, list[float]] = {}  # the pairs of one teacher are not independent: one mean per seed
        for (kk, m, seed), v in runs.items():
            if kk == k and (teacher_k, m, seed) in runs:
                by_seed.setdefault(seed, []).append(v - runs[(teacher_k, m, seed)])
        if by_seed and k != teacher_k:
            excess = [sum(d) / len(d) for d in by_seed.values()]
            interval, label = mean_ci(excess), f"excess_over_teacher_k@k={k}"
            out[label], out[f"{label}_stderr"] = interval.estimate, mean_stderr(excess)[1]
            if len(excess) > 1:
                out[f"{label}_ci_low"], out[f"{label}_ci_high"] = interval.low, interval.high
    plot_lines(
        ctx.path("granularity.png"),
        series,
        xlabel="total experts m",
        ylabel="normalized test MSE (best over training)",
        logx=True,
        logy=True,
        errors=errors,
        title=f"students against a teacher of granularity {teacher_k}",
    )
    return out
