"""The built-in probes on cases with a known answer."""

from __future__ import annotations

import pytest
import torch

from harness.models import MLP, ModelConfig, build_model
from harness.training import TrainConfig, Trainer, make_probes

pytestmark = pytest.mark.usefixtures("one_thread")


def test_rank_one_update_has_stable_rank_one():
    torch.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=10, n_layer=2, n_head=2, d_model=8, max_seq_len=4))
    (probe,) = make_probes(["rank"], top=3)
    probe.start(model)
    attn = model.blocks[1].attn
    with torch.no_grad():  # head 1 of layer 1: rank-1 change of W_Q (hence of W_Q W_K^T) and of W_V
        attn.q_proj.weight[4:8] += torch.outer(torch.randn(4), torch.randn(8))
        attn.v_proj.weight[4:8] += torch.outer(torch.randn(4), torch.randn(8))
    values = probe(1, model, {}, {})
    assert values["rank/L1.H1/qk/stable_rank"] == pytest.approx(1.0, abs=1e-4)
    assert values["rank/L1.H1/vo/stable_rank"] == pytest.approx(1.0, abs=1e-4)
    assert values["rank/L1.H1/qk/sv1"] < 1e-5 * values["rank/L1.H1/qk/sv0"]
    for untouched in ("rank/L1.H0/qk", "rank/L0.H0/vo", "rank/L0.H1/qk"):
        assert values[f"{untouched}/stable_rank"] == 0.0
    with torch.no_grad():  # a generic change has a stable rank well above 1
        attn.k_proj.weight.add_(torch.randn_like(attn.k_proj.weight))
    assert probe(2, model, {}, {})["rank/L1.H0/qk/stable_rank"] > 1.5


def test_rank_probe_in_training(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=10, n_layer=1, n_head=2, d_model=8, max_seq_len=6))

    def batches(step, g):
        x = torch.randint(3, 10, (4, 6), generator=g)
        return {"input_ids": x, "targets": x}

    config = TrainConfig(steps=4, batch_size=4, lr=1e-2, log_every=2)
    Trainer(model, config, batches, run_dir=tmp_path, probes=make_probes(["rank"]), probe_every=2, progress=False).fit()
    text = (tmp_path / "metrics.jsonl").read_text()
    assert "rank/L0.H1/vo/stable_rank" in text
    assert (tmp_path / "train_rank_stable_rank.png").exists()


def test_fact_correlation_is_low_early_and_near_one_at_stationarity():
    """Full-batch plain GD with L2 weight decay on a tanh MLP reaches a stationary point: FACT holds."""
    torch.manual_seed(0)
    X = torch.randn(64, 8)
    Y = X[:, :2].prod(-1, keepdim=True) + 0.5 * X[:, 2:3]
    model = MLP(8, 32, 1, depth=2, activation="tanh")
    logged = {}
    config = TrainConfig(
        steps=1500,
        batch_size=64,
        lr=0.3,
        weight_decay=0.05,
        optimizer="sgd",
        schedule="constant",
        grad_clip=None,
        log_every=500,
    )
    Trainer(
        model,
        config,
        lambda step, g: {"input_ids": X, "targets": Y},
        probes=make_probes(["fact"]),
        probe_every=1500,
        log=lambda step, values: logged.setdefault(step, {}).update(values),
        progress=False,
    ).fit()
    for layer in ("layers.0", "layers.1"):
        assert abs(logged[1][f"fact/{layer}/corr"]) < 0.5
        assert logged[1500][f"fact/{layer}/corr"] > 0.95
        assert logged[1500][f"fact/{layer}/residual"] < 0.05  # the scale matches too, so the 1/n is right
