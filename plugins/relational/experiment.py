"""One relational run: draw the splits, train one model on the n training examples, score the unseen-symbol test set.

Choices where the paper's setting leaves room (the reference code trains for epochs with Adam; ours is sized for one
CPU thread):

- The n training examples are a fixed set, drawn once per run seed; training samples minibatches of them with
  replacement for a fixed number of steps, so every n gets the same compute and a small n is fitted exactly.
- The training alphabet has n symbols unless ``alphabet`` says otherwise (the paper ties them: its x-axis is both).
  The validation and test alphabets have their own sizes; their symbols never occur in training, so their
  embeddings keep their random initial values (regression) or are only pushed down as wrong answers through the
  tied unembedding (next_token), as in the reference.
- AdamW without weight decay: decay would shrink the unseen symbols' embeddings to zero, which no test can recover.
- Token and position embeddings start at N(0, 1), the reference code's defaults (models.py).
- Next-token setting: the token embeddings (tied, so the unembeddings too) are trained, as in the reference; an
  unseen symbol's row moves only as a wrong answer of the softmax (pushed down), never as an input or a target.
  ``freeze_embeddings=true`` is the named variant that keeps them at their random init: unseen symbols then stay
  statistically like seen ones, and a model that copies must learn W_V W_O ~ I on the span of the training
  symbols, unless the b_h I term gives it for free. (An earlier note here said trained embeddings collapse the
  unseen symbols so that no model can name them; with N(0, 1) init the claim (ii) sweeps show otherwise.)
- Regression accuracy is agreement with the nearest template label (for labels +-1: the sign).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from harness.plugins.relational.models import ModelSpec, build, loss, outputs
from harness.plugins.relational.templates import CLS, Split, Template, Vocabulary, make_split


@dataclass
class DataConfig:
    """The task: templates, training set size and the three disjoint alphabets."""

    setting: str  # regression | next_token
    templates: list[Template]
    n: int  # training examples
    alphabet: int  # training alphabet size (the paper's n as well)
    val_alphabet: int  # validation alphabet size
    test_alphabet: int  # test alphabet size
    val_examples: int
    test_examples: int


@dataclass
class TrainSpec:
    steps: int = 1000  # optimizer updates
    batch_size: int = 64  # examples per update, drawn with replacement from the n training examples
    lr: float = 3e-3  # AdamW peak learning rate (10% warmup, cosine to 0)
    eval_every: int = 100  # steps between evaluations of all three splits (the learning curves)


def as_tensors(split: Split, setting: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(count, T) token ids, with the CLS token appended for regression, and the targets."""
    ids = torch.tensor(split.tokens, dtype=torch.long)  # (count, L)
    if setting == "regression":
        ids = torch.cat([ids, torch.full((len(ids), 1), CLS, dtype=torch.long)], dim=1)  # (count, L + 1)
        return ids, torch.tensor(split.labels, dtype=torch.float32)
    return ids, torch.tensor(split.labels, dtype=torch.long)


def make_data(data: DataConfig, seed: int) -> tuple[Vocabulary, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """The vocabulary and the train/val/test tensors; each split from its own seeded stream."""
    from harness.seeding import derive_seed

    vocab = Vocabulary.build(data.templates, data.alphabet, data.val_alphabet, data.test_alphabet)
    counts = {"train": data.n, "val": data.val_examples, "test": data.test_examples}
    splits = {}
    for name, count in counts.items():
        rng = random.Random(derive_seed(seed, "relational-data", name))
        split = make_split(data.templates, count, vocab.alphabet(name), rng, vocab)
        splits[name] = as_tensors(split, data.setting)
    return vocab, splits


@torch.no_grad()
def score(model, ids: torch.Tensor, targets: torch.Tensor, label_values: torch.Tensor | None) -> dict:
    """Loss and accuracy of ``model`` on one split (label_values: the regression labels; None for next_token)."""
    out = outputs(model, ids).float()
    if label_values is None:
        right = out.argmax(dim=-1) == targets
        value = torch.nn.functional.cross_entropy(out, targets)
    else:
        nearest = (out - label_values.view(1, -1)).abs().argmin(dim=-1)  # (B,): index of the closest label
        right = label_values[nearest] == targets
        value = torch.nn.functional.mse_loss(out.squeeze(-1), targets)
    return {"loss": float(value), "accuracy": float(right.float().mean())}


def identity_scalars(model) -> dict:
    """Mean |a_h| and |b_h| over heads and layers (identity attention only): how much the identity terms are used."""
    a = [m.identity_logit for m in model.modules() if hasattr(m, "identity_logit")]
    if not a:
        return {}
    b = [m.identity_value for m in model.modules() if hasattr(m, "identity_value")]
    return {
        "a_h_abs_mean": float(torch.cat(a).detach().abs().mean()),
        "b_h_abs_mean": float(torch.cat(b).detach().abs().mean()),
    }


def run_experiment(data: DataConfig, spec: ModelSpec, train: TrainSpec, ctx) -> dict[str, float]:
    from harness.training import TrainConfig, seed_everything

    vocab, splits = make_data(data, ctx.seed_for("data"))
    train_ids, train_targets = splits["train"]
    labels = None
    if data.setting == "regression":
        labels = torch.tensor(sorted({float(t.label) for t in data.templates}))
    seed_everything(ctx.seed_for("init"))
    model = build(spec, data.setting, vocab.size, train_ids.shape[1])

    def batches(step: int, generator: torch.Generator) -> dict:
        index = torch.randint(len(train_ids), (train.batch_size,), generator=generator)
        return {"input_ids": train_ids[index], "targets": train_targets[index]}

    def evaluate(model, step: int) -> dict:
        values = {}
        for name, (ids, targets) in splits.items():
            result = score(model, ids, targets, labels)
            values[f"{name}_set_loss" if name == "train" else f"{name}_loss"] = result["loss"]
            values[f"{name}_accuracy"] = result["accuracy"]
        values["test_error"] = 1.0 - values["test_accuracy"]
        return values

    config = TrainConfig(
        steps=train.steps,
        batch_size=train.batch_size,
        lr=train.lr,
        weight_decay=0.0,
        warmup=0.1,
        schedule="cosine",
        grad_clip=1.0,
        seed=ctx.seed_for("batches"),
        eval_every=train.eval_every,
        log_every=max(1, train.eval_every // 2),
    )
    trainer = ctx.trainer(
        model,
        config,
        batches,
        loss_fn=lambda m, b: loss(m, b["input_ids"], b["targets"]),
        evaluate=evaluate,
        progress=False,
    )
    result = trainer.fit()
    plot_learning_curves(ctx, trainer.history)
    model.eval()
    final = evaluate(model, trainer.state.step)  # also when a finished run is resumed and fit() trains no more
    timing = {k: float(result[k]) for k in ("train_loss", "train_time_s")}
    return {**final, **timing, **identity_scalars(model), "vocab_size": float(vocab.size)}


def plot_learning_curves(ctx, history: list[dict]) -> None:
    """Accuracy of the three splits against the training step."""
    from harness.report import plot_lines

    series = {}
    for split in ("train", "val", "test"):
        points = [(h["step"], h[f"{split}_accuracy"]) for h in history if f"{split}_accuracy" in h]
        if points:
            series[f"{split} symbols"] = ([p[0] for p in points], [p[1] for p in points])
    if series:
        plot_lines(
            ctx.path("learning_curves.png"), series, xlabel="step", ylabel="accuracy", title="accuracy during training"
        )
