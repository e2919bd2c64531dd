"""The trainer's compiled step: the same losses as eager, the same again with the same seed, its cost reported."""

from __future__ import annotations

import os

import torch
from torch._dynamo import reset

from harness.models import ModelConfig, build_model
from harness.training import TrainConfig, Trainer

CONFIG = ModelConfig(
    vocab_size=12,
    n_layer=2,
    n_head=2,
    d_model=16,
    d_ff=32,
    max_seq_len=8,
    positions="rotary",
    ffn="swiglu",
    norm="rmsnorm",
    bias=False,
)


def batches(step, generator, batch_size=4):
    x = torch.randint(0, 12, (batch_size, 8), generator=generator)
    return {"input_ids": x, "targets": torch.roll(x, 1, dims=1)}


def fit(compile: bool, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    reset()
    torch.manual_seed(0)
    model = build_model(CONFIG)
    config = TrainConfig(steps=3, batch_size=4, lr=1e-2, log_every=1, compile=compile)
    trainer = Trainer(model, config, batches, log=lambda step, values: None, progress=False)
    result = trainer.fit()
    return [h["train_loss"] for h in trainer.history], result, model


def test_compiled_training_matches_eager_repeats_and_reports_its_compile_time(tmp_path, monkeypatch):
    eager, eager_result, _ = fit(False, tmp_path, monkeypatch)
    first, result, model = fit(True, tmp_path, monkeypatch)
    again, _, model_again = fit(True, tmp_path, monkeypatch)
    assert "compile_s" not in eager_result and result["compile_s"] > 0
    assert (tmp_path / "cache" / "inductor").is_dir()  # compiled code cached under $HARNESS_CACHE
    torch.testing.assert_close(first, eager, rtol=1e-5, atol=1e-6)
    assert first == again  # same command, same seed: the same losses and weights, compiled too
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), model_again.parameters()))


def test_a_cache_folder_the_user_chose_is_kept(tmp_path, monkeypatch):
    from harness.training.compile import compile_loss

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    compile_loss(torch.nn.Linear(2, 2))
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "mine")
