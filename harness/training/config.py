"""How to train: the configuration every run records, the learning-rate schedule, and seeding for a seeded init."""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.errors import UsageError


@dataclass
class TrainConfig:
    """How to train; every field is recorded in checkpoints."""

    steps: int = 1000  # optimizer updates
    batch_size: int = 32  # global batch: examples per step over all ranks (the batches callable must match it)
    lr: float = 3e-4  # peak learning rate
    weight_decay: float = 0.0  # AdamW: decoupled decay; SGD: L2 term lambda*theta added to the gradient
    optimizer: str = "adamw"  # "adamw" or "sgd"
    momentum: float = 0.0  # SGD momentum (0 = plain gradient descent)
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW betas
    warmup: float = 0.0  # fraction of steps with linear warmup from 0 to lr
    schedule: str = "cosine"  # after warmup: "cosine" decay to min_lr_ratio * lr, or "constant"
    min_lr_ratio: float = 0.0  # floor of the cosine schedule, as a fraction of lr
    grad_clip: float | None = 1.0  # max global gradient norm; None or 0 = no clipping
    dtype: str = "float32"  # "float32" or "bfloat16" (autocast; weights and optimizer stay float32)
    seed: int = 0  # seeds batches (per step) and the global torch RNG (dropout)
    checkpoint_every: int = 0  # steps between checkpoints in run_dir (0 = only at the end)
    eval_every: int = 0  # steps between evaluate() calls (0 = only at the end, when evaluate is given)
    log_every: int = 10  # steps between train-loss log points
    early_stop_patience: int | None = None  # stop after this many evaluations without improvement (None = off)
    early_stop_metric: str = "eval_loss"  # key of evaluate()'s result watched by early stopping
    early_stop_mode: str = "min"  # "min" or "max": which direction is an improvement
    device: str = "cpu"  # "cpu" or "cuda"
    no_decay_1d: bool = False  # exclude 1-D parameters (biases, norm gains) from weight decay
    # torch.compile the loss computation (training/compile.py: cached under $HARNESS_CACHE/inductor; the first step's
    # seconds come back as compile_s); layer captures may recompile
    compile: bool = False

    def __post_init__(self):
        self.betas = tuple(self.betas)
        choices = {
            "optimizer": ("adamw", "sgd"),
            "schedule": ("cosine", "constant"),
            "dtype": ("float32", "bfloat16"),
            "early_stop_mode": ("min", "max"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise UsageError(f"{name} '{getattr(self, name)}': choose one of {', '.join(allowed)}")
        if self.steps < 1 or self.batch_size < 1:
            raise UsageError("steps and batch_size must be positive")
        if not 0 <= self.warmup < 1:
            raise UsageError(f"warmup {self.warmup}: give a fraction of the steps in [0, 1)")


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), Python's random and NumPy: call before building a model for seeded init."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_factor(step: int, config: TrainConfig) -> float:
    """Learning-rate multiplier for update ``step`` (0-based): linear warmup, then cosine or constant."""
    warmup_steps = int(config.warmup * config.steps)
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if config.schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, config.steps - warmup_steps)
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
