"""The moe_granularity task end to end through the CLI (in process): a student started at the teacher stays at ~0
normalized MSE while a fresh one does not; bad arguments exit with status 2."""

import json

from harness.cli import main

SMALL = "d=8,teacher_k=2,active_hidden=8,steps=30,batch_size=64,test_size=512,eval_every=10"


def metrics(capsys, out, task_args):
    code = main(["run", "--task", "moe_granularity", "--task-args", task_args, "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    return json.loads(captured.out)["metrics"]


def test_student_at_the_teacher_has_zero_error_and_a_fresh_one_does_not(tmp_path, capsys, one_thread):
    at_teacher = metrics(capsys, tmp_path, f"{SMALL},k=2,experts=4,init_at_teacher=true")
    fresh = metrics(capsys, tmp_path, f"{SMALL},k=2,experts=4")
    assert at_teacher["normalized_mse"] < 1e-8 and at_teacher["final_normalized_mse"] < 1e-8
    assert fresh["normalized_mse"] > 0.05
    assert at_teacher["active_expert_parameters"] == 8 * (8 + 1 + 1)


def test_vector_teacher_and_wider_students(tmp_path, capsys, one_thread):
    """A 3-output teacher with 4 active hidden units: the students have 4x its width and their own 3 outputs."""
    wide = metrics(capsys, tmp_path, f"{SMALL},d_out=3,teacher_hidden=2,k=2,experts=4")
    assert wide["active_expert_parameters"] == 8 * (8 + 1 + 3)
    assert 0 < wide["normalized_mse"] <= wide["final_normalized_mse"] + 1e-12

    from harness.plugins.moe.task import MoEOptions

    options = MoEOptions(d=8, d_out=3, teacher_k=2, active_hidden=8, teacher_hidden=2)
    assert (options.teacher.d_out, options.teacher.active_hidden, options.teacher.n_experts) == (3, 2, 4)
    assert (options.student.d_out, options.student.active_hidden) == (3, 8)


def test_bad_args_exit_2(tmp_path, capsys):
    for args, message in [
        ("k=8,experts=4", "top_k=8 is larger"),
        ("k=3", "divisible"),
        ("k=1,init_at_teacher=true", "init_at_teacher"),
        ("expert=4", "experts"),
        ("steps=0", "steps=0"),
        ("freeze=all", "choose one of gate, experts"),
        ("freeze=gate,teacher_hidden=32", "teacher_hidden=0"),
        ("d_out=0", "d_out"),
        ("device=tpu", "choose cpu or cuda"),
    ]:
        code = main(["run", "--task", "moe_granularity", "--task-args", args, "--out", str(tmp_path)])
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err, (args, err[-500:])


def test_sweep_summary_pairs_each_student_with_the_teacher_granularity_one(tmp_path):
    from types import SimpleNamespace

    from harness.plugins.moe.task import MoEGranularity

    def error(k, m, seed):
        return 0.1 / k + 0.001 * m + 0.01 * seed

    points = [
        {"args": {"k": k, "experts": m, "teacher_k": 4}, "seed": seed, "metrics": {"normalized_mse": error(k, m, seed)}}
        for k in (1, 2, 4, 8)
        for m in (8, 16)
        for seed in (0, 1)
    ]
    out = MoEGranularity.sweep_summary(points, SimpleNamespace(path=lambda name: tmp_path / name))
    assert abs(out["excess_over_teacher_k@k=1"] - (0.1 - 0.025)) < 1e-12  # paired: the m and seed terms cancel
    assert out["excess_over_teacher_k@k=1_stderr"] < 1e-12 and "excess_over_teacher_k@k=4" not in out
    assert abs(out["best_normalized_mse@k=2"] - (error(2, 8, 0) + error(2, 8, 1)) / 2) < 1e-12  # seed mean, best m
    assert (tmp_path / "granularity.png").stat().st_size > 1000
    other = [{**p, "args": {**p["args"], "freeze": "gate" if p["seed"] else ""}} for p in points]
    assert MoEGranularity.sweep_summary(other, SimpleNamespace(path=lambda name: tmp_path / name)) == {}


def test_freeze_copies_the_teacher_part_and_stops_its_training():
    import torch
    from harness.plugins.moe.experiment import freeze_at_teacher, make_teacher
    from harness.plugins.moe.layer import MoE, MoEConfig

    config = MoEConfig(6, 1, n_experts=4, top_k=2, active_hidden=8)
    teacher = make_teacher(config, seed=0)
    for part, frozen in (("gate", {"gate.weight"}), ("experts", {"w_in", "b_in", "w_out"})):
        student = MoE(config)
        freeze_at_teacher(student, teacher, part)
        for name, param in student.named_parameters():
            assert param.requires_grad == (name not in frozen)
            assert torch.equal(param, dict(teacher.named_parameters())[name]) == (name in frozen)


def test_heatmap_summary_measures_separation_per_teacher_on_each_seed(tmp_path):
    import math
    from types import SimpleNamespace

    from harness.plugins.moe.task import MoEGranularity

    def error(t, k, seed):  # coarser students 10x (seed 0) or 20x (seed 1) worse; k=8 a little worse than k=4
        return (0.01 if k >= t else 0.1 * (1 + seed) * t / k) * (1.5 if k > t else 1.0)

    points = [
        {
            "args": {"teacher_k": t, "k": k, "experts": 16},
            "seed": seed,
            "metrics": {"normalized_mse": error(t, k, seed)},
        }
        for t in (1, 2, 4)
        for k in (1, 2, 4, 8)
        for seed in (0, 1)
    ]
    out = MoEGranularity.sweep_summary(points, SimpleNamespace(path=lambda name: tmp_path / name))
    # teacher 4: best coarser student (k=2: 0.2 or 0.4) over the worst finer one (k=8: 0.015)
    assert math.isclose(out["separation@teacher_k=4"], math.sqrt(0.2 / 0.015 * 0.4 / 0.015))
    assert math.isclose(out["coarse_ratio@teacher_k=4"], math.sqrt(20 * 40))  # k=2 over k=4, per seed
    assert out["separation@teacher_k=4_ci_low"] < out["separation@teacher_k=4"] < out["separation@teacher_k=4_ci_high"]
    assert out["separation@teacher_k=4_seeds"] == 2
    assert "separation@teacher_k=1" not in out  # no student is coarser than a k_t = 1 teacher
    assert (tmp_path / "granularity_heatmap.png").stat().st_size > 1000


def test_budget_summary_reports_the_boundary_ratio_per_budget_and_each_students_gain(tmp_path):
    import math
    from types import SimpleNamespace

    from harness.plugins.moe.task import MoEGranularity

    def error(k, steps, seed):  # k = 4 halves its error with twice the steps, k = 2 does not move
        return (0.1 if k == 2 else 0.02 * 3000 / steps) * (1 + 0.1 * seed)

    points = [
        {
            "args": {"teacher_k": 4, "k": k, "steps": steps},
            "seed": seed,
            "metrics": {"normalized_mse": error(k, steps, seed)},
        }
        for k in (2, 4)
        for steps in (3000, 6000)
        for seed in (0, 1, 2)
    ]
    out = MoEGranularity.sweep_summary(points, SimpleNamespace(path=lambda name: tmp_path / name))
    assert math.isclose(out["coarse_ratio@steps=3000"], 5) and math.isclose(out["coarse_ratio@steps=6000"], 10)
    assert math.isclose(out["budget_gain@k=4"], 0.5) and math.isclose(out["budget_gain@k=2"], 1)
    assert out["budget_gain@k=4_seeds"] == 3
