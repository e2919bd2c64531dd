"""The Trainer: determinism, resume after an interruption, DDP, evaluation, early stopping, probes, hooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
import torch

from harness.errors import UsageError
from harness.models import ModelConfig, build_model, load_checkpoint_dir
from harness.registry import Plugins
from harness.training import TrainConfig, Trainer, group_series, lr_factor, probes_from_context

pytestmark = pytest.mark.usefixtures("one_thread")


CONFIG = ModelConfig(vocab_size=12, n_layer=1, n_head=2, d_model=16, max_seq_len=8, dropout=0.1)


def copy_task(step, generator, batch_size=8):
    """Predict the previous token: learnable in a few dozen steps."""
    x = torch.randint(3, 12, (batch_size, 8), generator=generator)
    return {"input_ids": x, "targets": torch.roll(x, 1, dims=1)}


def new_model(seed=0):
    torch.manual_seed(seed)
    return build_model(CONFIG)


def train(run_dir=None, steps=12, seed=0, batches=copy_task, lr=1e-2, **kwargs):
    config = TrainConfig(
        steps=steps, batch_size=8, lr=lr, warmup=0.2, seed=seed, log_every=4, checkpoint_every=4, **kwargs
    )
    model = new_model()
    trainer = Trainer(model, config, batches, run_dir=run_dir, progress=False)
    return model, trainer.fit()


def weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_same_seed_same_weights_other_seed_other_weights():
    a, metrics = train()
    b, _ = train()
    c, _ = train(seed=1)
    assert torch.equal(weights(a), weights(b))
    assert not torch.equal(weights(a), weights(c))
    assert metrics["steps"] == 12 and metrics["tokens_per_s"] > 0


def test_loss_goes_down_and_files_are_written(tmp_path):
    train(tmp_path, steps=100, lr=3e-2)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train_loss"] for r in records if "train_loss" in r]
    assert losses[-1] < 0.5 * losses[0]
    assert (tmp_path / "train_train_loss.png").stat().st_size > 0
    model, _, extra = load_checkpoint_dir(tmp_path / "checkpoint")
    assert extra["step"] == 100 and model.config == CONFIG


class Interrupt(Exception):
    pass


def test_resume_after_interruption_gives_the_uninterrupted_weights(tmp_path):
    expected, _ = train(steps=10)

    def dies_at_step_7(step, generator):
        if step == 7:
            raise Interrupt  # the fault: a kill between checkpoints (last one at step 4)
        return copy_task(step, generator)

    with pytest.raises(Interrupt):
        train(tmp_path, steps=10, batches=dies_at_step_7)
    resumed, metrics = train(tmp_path, steps=10)
    assert metrics["steps"] == 10
    assert torch.equal(weights(resumed), weights(expected))


def test_sgd_bf16_and_constant_schedule_run():
    model, metrics = train(steps=4, optimizer="sgd", momentum=0.9, dtype="bfloat16", schedule="constant")
    assert metrics["train_loss"] == metrics["train_loss"]  # finite, not nan
    assert lr_factor(3, TrainConfig(steps=10, warmup=0.5)) == pytest.approx(0.8)
    assert lr_factor(9, TrainConfig(steps=10, schedule="cosine")) < 0.05


def test_bad_train_config_is_a_usage_error():
    with pytest.raises(UsageError, match="optimizer"):
        TrainConfig(optimizer="lion")


def test_evaluation_and_early_stopping():
    calls = []

    def evaluate(model, step):
        calls.append(step)
        return {"eval_loss": 1.0}  # never improves after the first evaluation

    config = TrainConfig(steps=50, batch_size=8, eval_every=2, early_stop_patience=2, log_every=2)
    metrics = Trainer(new_model(), config, copy_task, evaluate=evaluate, progress=False).fit()
    assert calls == [2, 4, 6] and metrics["steps"] == 6 and metrics["stopped_early"] == 1.0
    with pytest.raises(UsageError, match="early_stop_metric"):
        config = TrainConfig(steps=4, batch_size=8, eval_every=2, early_stop_patience=2, early_stop_metric="acc")
        Trainer(new_model(), config, copy_task, evaluate=evaluate, progress=False).fit()


class RecordingProbe:
    """Asks for one layer's captures and records their shapes."""

    name = "recording"

    def __init__(self):
        self.seen = []

    def layers(self, model):
        return ["blocks.0.ffn.up"]

    def __call__(self, step, model, batch, captures):
        record = captures["blocks.0.ffn.up"]
        self.seen.append((step, tuple(record["inputs"].shape), tuple(record["grad_outputs"].shape)))
        return {"recording/rows": float(record["inputs"].shape[0])}


def test_probes_and_hooks_see_captures_on_probe_steps(tmp_path):
    probe = RecordingProbe()
    plugins = Plugins(extra_modules=["harness_testcomponents"], use_entry_points=False)
    logged = []
    config = TrainConfig(steps=6, batch_size=8, log_every=3)
    Trainer(
        new_model(),
        config,
        copy_task,
        probes=[probe],
        probe_every=3,
        hooks=plugins.hook,
        log=lambda step, values: logged.append((step, values)),
        progress=False,
    ).fit()
    assert probe.seen == [
        (1, (8, 8, 16), (8, 8, 64)),
        (3, (8, 8, 16), (8, 8, 64)),
        (6, (8, 8, 16), (8, 8, 64)),
    ]
    hook_steps = [s for s, v in logged if "hook/captured_layers" in v]
    assert hook_steps == [1, 3, 6]
    assert all(v["hook/captured_layers"] == 1.0 for s, v in logged if "hook/captured_layers" in v)


def test_probes_from_context_and_plot_groups():
    ctx = SimpleNamespace(probes=["rank", "fact"], probe_every=5)
    assert [p.name for p in probes_from_context(ctx, top=2)] == ["rank", "fact"]
    groups = group_series(
        [
            {"step": 1, "rank/L0.H1/qk/sv0": 1.0, "rank/L0.H1/qk/stable_rank": 1.0},
            {"step": 2, "train_loss": 3.0},
        ]
    )
    assert set(groups) == {"rank_sv", "rank_stable_rank", "train_loss"}
    assert list(groups["rank_sv"]) == ["L0.H1/qk/0"]


DDP_SCRIPT = textwrap.dedent("""
    import sys, torch
    from harness.models import ModelConfig, build_model
    from harness.training import TrainConfig, Trainer
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=12, n_layer=1, n_head=2, d_model=16, max_seq_len=8))
    def batches(step, g):
        x = torch.randint(3, 12, (8, 8), generator=g)
        return {"input_ids": x, "targets": torch.roll(x, 1, dims=1)}
    rows = []
    def loss_fn(model, batch):
        rows.append(len(batch["input_ids"]))  # this rank's share of the global batch
        return model.loss(batch["input_ids"], batch["targets"])
    # SGD: Adam would magnify float-rounding differences of near-zero gradients into visible weight changes
    config = TrainConfig(steps=5, batch_size=8, lr=0.1, optimizer="sgd", momentum=0.9, log_every=1)
    metrics = Trainer(model, config, batches, loss_fn=loss_fn, progress=False).fit()
    if torch.distributed.is_initialized():
        rank = torch.distributed.get_rank()
        torch.distributed.destroy_process_group()
    else:
        rank = 0
    if rank == 0:
        torch.save({"weights": [p.detach() for p in model.parameters()], "loss": metrics["train_loss"],
                    "rows": sorted(set(rows))}, sys.argv[1])
""")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_match_one_process(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    single = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "one.pt")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr
    double = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(free_port()),
            str(script),
            str(tmp_path / "two.pt"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert double.returncode == 0, double.stderr[-3000:]
    one, two = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    for a, b in zip(one["weights"], two["weights"]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert (one["rows"], two["rows"]) == ([8], [4])
    assert one["loss"] == pytest.approx(two["loss"], rel=1e-4)
    assert not torch.equal(one["weights"][0], new_weights_of_script_init())


def new_weights_of_script_init():
    torch.manual_seed(0)
    return build_model(ModelConfig(vocab_size=12, n_layer=1, n_head=2, d_model=16, max_seq_len=8)).tok_emb.weight


KILL_SCRIPT = textwrap.dedent("""
    import sys, time, torch
    from harness.models import ModelConfig, build_model
    from harness.training import TrainConfig, Trainer
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=12, n_layer=1, n_head=2, d_model=16, max_seq_len=8, dropout=0.1)
    model = build_model(config)
    def batches(step, g):
        time.sleep(float(sys.argv[2]))  # slow enough to be killed mid-run
        x = torch.randint(3, 12, (8, 8), generator=g)
        return {"input_ids": x, "targets": torch.roll(x, 1, dims=1)}
    config = TrainConfig(steps=40, batch_size=8, lr=1e-2, checkpoint_every=3, log_every=1)
    Trainer(model, config, batches, run_dir=sys.argv[1], progress=False).fit()
    torch.save([p.detach() for p in model.parameters()], sys.argv[1] + "/final.pt")
""")


@pytest.mark.slow
def test_resume_after_kill_9_gives_the_uninterrupted_weights(tmp_path):
    import signal
    import time

    script = tmp_path / "kill_train.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = subprocess.run([sys.executable, str(script), str(tmp_path / "whole"), "0"], env=env, timeout=300)
    assert whole.returncode == 0
    run = str(tmp_path / "killed")
    process = subprocess.Popen([sys.executable, str(script), run, "0.05"], env=env)
    deadline = time.time() + 120
    while not (tmp_path / "killed" / "checkpoint").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.4)  # somewhere between (or inside) later checkpoint writes
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed" / "final.pt").exists()
    resumed = subprocess.run([sys.executable, str(script), run, "0"], env=env, timeout=300)
    assert resumed.returncode == 0
    expected, got = torch.load(tmp_path / "whole" / "final.pt"), torch.load(tmp_path / "killed" / "final.pt")
    assert all(torch.equal(a, b) for a, b in zip(expected, got))


def test_keep_freed_memory_takes_on_glibc():
    import platform

    from harness.training import keep_freed_memory

    assert keep_freed_memory() is (platform.libc_ver()[0] == "glibc")


class _Planted:
    """Unpickling this object runs code: what a planted checkpoint would do."""

    def __reduce__(self):
        return (os.system, ("touch planted-code-ran",))


def test_resume_refuses_a_checkpoint_that_would_run_code(tmp_path, monkeypatch):
    train(tmp_path, steps=4)
    state = tmp_path / "checkpoint" / "train_state.pt"
    assert state.exists()
    torch.save({"model": _Planted()}, state)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="not a training state of tensors and plain data"):
        train(tmp_path, steps=8)
    assert not (tmp_path / "planted-code-ran").exists()
