"""The ``relational`` task family: template tasks over abstract symbols, trained from scratch (arXiv 2310.09753).

One run trains one model on n examples and reports how well it labels templates filled with symbols it never saw.
The paper's figures are sweeps of these runs over n (and the embedding dimension); Relational.sweep_summary
turns a sweep into the paper's headline numbers: the smallest n at which each model generalizes.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.plugins.relational.templates import SETTINGS, parse_templates

from harness.errors import UsageError
from harness.options import Options, option, takes

BASELINE = "mlp"  # the attention value that asks for the MLP baseline instead of a transformer


@dataclass(frozen=True)
class RelationalOptions(Options):
    """The setting and templates, the alphabets and splits, the model and its AdamW training."""

    setting: str = option(
        "regression",
        "regression (CLS token + regression head, MSE) or next_token (tied embeddings, cross-entropy)",
        choices=SETTINGS,
    )
    templates: str = option(
        "auto",
        "a named set (aba_abb, same_different, aabb_abab; copy, odd_one_out) or PATTERN:LABEL pairs "
        "(aba:+1,abb:-1; ab:a); auto: aba_abb for regression, copy for next_token",
    )
    n: int = option(256, "training examples", ge=1)
    alphabet: int = option(0, "training alphabet size; 0 ties it to n, as the paper does", ge=0)
    val_alphabet: int = option(256, "size of the disjoint validation alphabet", ge=1)
    test_alphabet: int = option(256, "size of the disjoint test alphabet", ge=1)
    val_examples: int = option(512, "validation examples", ge=1)
    test_examples: int = option(1024, "test examples", ge=1)
    attention: str = option("sdpa", "sdpa, identity (any registered attention component), or mlp for the MLP baseline")
    d_model: int = option(64, "the transformer's width (the MLP baseline: 4 d_model hidden units)", ge=1)
    n_layer: int = option(2, "transformer layers (the MLP baseline: hidden layers)", ge=1)
    n_head: int = option(4, "attention heads", ge=1)
    freeze_embeddings: bool | None = option(
        None, "keep token embeddings at their random init (the frozen variant); default: trained, as in the paper"
    )
    steps: int = option(1000, "AdamW updates on minibatches drawn from the n examples", ge=1)
    batch_size: int = option(64, "examples per update", ge=1)
    lr: float = option(3e-3, "the AdamW learning rate", gt=0)
    threads: int = option(1, "torch threads (1: the sweep runs points side by side instead)", ge=1)

    def check(self) -> None:
        need = max(len(t.wildcards) for t in parse_templates(self.templates, self.setting))
        for name, size in (
            ("alphabet", self.alphabet or self.n),
            ("val_alphabet", self.val_alphabet),
            ("test_alphabet", self.test_alphabet),
        ):
            if size < need:
                raise UsageError(f"{name}={size} cannot fill {need} distinct wildcards; give at least {need}")
        if self.d_model % self.n_head:
            raise UsageError(f"d_model={self.d_model} is not divisible by n_head={self.n_head}")
        check_attention(self.attention)


@takes(RelationalOptions)
class Relational:
    """Regression (CLS token, MSE, label +-1) or next-token (symbolic labels, tied embeddings) on template tasks.

    ``attention=sdpa|identity`` picks the transformer's attention (identity: two trainable scalars per head, see
    attention.py); ``attention=mlp`` trains the baseline MLP on concatenated one-hots instead.
    """

    name = "relational"
    version = "1"
    primary_metric = "test_accuracy"

    def __init__(self, options: RelationalOptions):
        self.options, self.threads, self.setting = options, options.threads, options.setting
        self.templates = parse_templates(options.templates, options.setting)

    def run(self, ctx) -> dict[str, float]:
        from harness.plugins.relational.experiment import DataConfig, TrainSpec, run_experiment
        from harness.plugins.relational.models import ModelSpec

        o = self.options
        data = DataConfig(
            setting=o.setting,
            templates=self.templates,
            n=o.n,
            alphabet=o.alphabet or o.n,
            val_alphabet=o.val_alphabet,
            test_alphabet=o.test_alphabet,
            val_examples=o.val_examples,
            test_examples=o.test_examples,
        )
        model = ModelSpec(
            attention=o.attention,
            d_model=o.d_model,
            n_layer=o.n_layer,
            n_head=o.n_head,
            freeze_embeddings=bool(o.freeze_embeddings),
        )
        train = TrainSpec(steps=o.steps, batch_size=o.batch_size, lr=o.lr, eval_every=max(1, o.steps // 10))
        return run_experiment(data, model, train, ctx)  # on self.threads, which the run sets

    @staticmethod
    def sweep_summary(points: list[dict], ctx) -> dict[str, float]:
        """Per model: the smallest n reaching the accuracy threshold; the plots of the paper's two figures."""
        from harness.plugins.relational.summary import summarize

        return summarize(points, ctx)


def check_attention(attention: str) -> None:
    """``mlp`` or a registered attention component (did-you-mean otherwise), without importing torch."""
    if attention == BASELINE:
        return
    from harness.registry import get_plugins

    try:
        get_plugins().registry("components").get(f"attention:{attention}")
    except UsageError as exc:
        raise UsageError(f"attention={attention}: {exc}; or mlp for the MLP baseline") from None


__all__ = ["BASELINE", "Relational", "SETTINGS"]
