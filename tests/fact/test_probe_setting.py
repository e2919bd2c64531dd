"""The fact probe labels runs outside the theorem's setting (fact/setting)."""

from __future__ import annotations

import pytest
import torch

from harness.models import MLP
from harness.training import TrainConfig, Trainer, make_probes

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    "settings,expected",
    [
        ({"optimizer": "sgd", "grad_clip": None, "weight_decay": 0.05}, 1.0),
        ({"optimizer": "adamw", "grad_clip": None, "weight_decay": 0.05}, 0.0),  # decoupled decay
        ({"optimizer": "sgd", "grad_clip": 1.0, "weight_decay": 0.05}, 0.0),  # clipping
        ({"optimizer": "sgd", "grad_clip": None, "weight_decay": 0.05, "momentum": 0.9}, 0.0),
    ],
)
def test_fact_setting_label(settings, expected):
    torch.manual_seed(0)
    X, Y = torch.randn(16, 4), torch.randn(16, 1)
    logged = {}
    config = TrainConfig(steps=2, batch_size=16, lr=0.1, schedule="constant", log_every=1, **settings)
    Trainer(
        MLP(4, 8, 1),
        config,
        lambda step, g: {"input_ids": X, "targets": Y},
        probes=make_probes(["fact"]),
        probe_every=1,
        log=lambda step, values: logged.setdefault(step, {}).update(values),
        progress=False,
    ).fit()
    assert logged[1]["fact/setting"] == expected
    assert "fact/layers.0/corr" in logged[1]
