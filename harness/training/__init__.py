"""The one trainer every from-scratch experiment shares, and the probe machinery around it.

``Trainer(model, TrainConfig(...), batches).fit()`` trains with seeded batches, checkpoints it resumes from, optional
evaluation, early stopping, probes and DDP under ``torchrun``. The package by job: config.py (what to train with and
the learning-rate schedule), trainer.py (the loop, checkpoints, logging), probes.py (layer captures and the probes
built from ``--probe``), distributed.py (ranks, sharding, DDP), plots.py (the logged series as PNGs).
"""

from harness.training.config import TrainConfig, lr_factor, seed_everything
from harness.training.plots import group_series, plot_series
from harness.training.probes import Captures, make_probes, probes_from_context
from harness.training.trainer import STATE_FILE, Trainer, count_tokens, default_loss, keep_freed_memory, load_state

__all__ = [
    "STATE_FILE",
    "Captures",
    "TrainConfig",
    "Trainer",
    "count_tokens",
    "default_loss",
    "group_series",
    "keep_freed_memory",
    "load_state",
    "lr_factor",
    "make_probes",
    "plot_series",
    "probes_from_context",
    "seed_everything",
]
