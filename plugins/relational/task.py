"""The ``relational`` task family: template tasks over abstract symbols, trained from scratch (arXiv 2310.09753).

One run trains one model on n examples and reports how well it labels templates filled with symbols it never saw.
The paper's figures are sweeps of these runs over n (and the embedding dimension); :meth:`Relational.sweep_summary`
turns a sweep into the paper's headline numbers: the smallest n at which each model generalizes.
"""

from __future__ import annotations

from harness.plugins.relational.templates import SETTINGS, parse_templates

from harness.errors import UsageError

BASELINE = "mlp"  # the attention value that asks for the MLP baseline instead of a transformer


class Relational:
    """Regression (CLS token, MSE, label +-1) or next-token (symbolic labels, tied embeddings) on template tasks.

    ``attention=sdpa|identity`` picks the transformer's attention (identity: two trainable scalars per head, see
    attention.py); ``attention=mlp`` trains the baseline MLP on concatenated one-hots instead.
    """

    name = "relational"
    version = "1"
    primary_metric = "test_accuracy"

    def __init__(
        self,
        setting: str = "regression",
        templates: str = "auto",
        n: int = 256,
        alphabet: int = 0,
        val_alphabet: int = 256,
        test_alphabet: int = 256,
        val_examples: int = 512,
        test_examples: int = 1024,
        attention: str = "sdpa",
        d_model: int = 64,
        n_layer: int = 2,
        n_head: int = 4,
        freeze_embeddings: bool | None = None,
        steps: int = 1000,
        batch_size: int = 64,
        lr: float = 3e-3,
        threads: int = 1,
    ):
        """
        Args:
            setting: regression (CLS token + regression head, MSE) or next_token (tied embeddings, cross-entropy).
            templates: a named set (aba_abb, same_different, aabb_abab; copy, odd_one_out) or PATTERN:LABEL pairs
                (aba:+1,abb:-1; ab:a); auto: aba_abb for regression, copy for next_token.
            n: training examples.
            alphabet: training alphabet size; 0 ties it to n, as the paper does.
            val_alphabet, test_alphabet: sizes of the disjoint validation and test alphabets.
            val_examples, test_examples: examples in those splits.
            attention: sdpa, identity (any registered attention component), or mlp for the MLP baseline.
            d_model, n_layer, n_head: the transformer (the MLP baseline: width 4 d_model, n_layer hidden layers).
            freeze_embeddings: keep token embeddings at their random init; default: frozen for next_token (see
                experiment.py), trained for regression.
            steps, batch_size, lr: AdamW updates on minibatches drawn from the n examples.
            threads: torch threads (1: the sweep runs points side by side instead).
        """
        self.templates = parse_templates(templates, setting)
        for name, value in (
            ("n", n),
            ("val_alphabet", val_alphabet),
            ("test_alphabet", test_alphabet),
            ("val_examples", val_examples),
            ("test_examples", test_examples),
            ("steps", steps),
            ("batch_size", batch_size),
            ("d_model", d_model),
            ("n_layer", n_layer),
            ("n_head", n_head),
            ("threads", threads),
        ):
            if value < 1:
                raise UsageError(f"{name}={value}: give a positive number")
        if alphabet < 0:
            raise UsageError(f"alphabet={alphabet}: give a positive size, or 0 to use n")
        need = max(len(t.wildcards) for t in self.templates)
        for name, size in (
            ("alphabet", alphabet or n),
            ("val_alphabet", val_alphabet),
            ("test_alphabet", test_alphabet),
        ):
            if size < need:
                raise UsageError(f"{name}={size} cannot fill {need} distinct wildcards; give at least {need}")
        if d_model % n_head:
            raise UsageError(f"d_model={d_model} is not divisible by n_head={n_head}")
        if lr <= 0:
            raise UsageError(f"lr={lr}: give a positive learning rate")
        check_attention(attention)
        self.setting = setting
        self.data_args = dict(
            n=n,
            alphabet=alphabet or n,
            val_alphabet=val_alphabet,
            test_alphabet=test_alphabet,
            val_examples=val_examples,
            test_examples=test_examples,
        )
        if freeze_embeddings is None:
            freeze_embeddings = setting == "next_token"
        self.model_args = dict(
            attention=attention, d_model=d_model, n_layer=n_layer, n_head=n_head, freeze_embeddings=freeze_embeddings
        )
        self.train_args = dict(steps=steps, batch_size=batch_size, lr=lr, eval_every=max(1, steps // 10))
        self.threads = threads

    def run(self, ctx) -> dict[str, float]:
        from harness.plugins.relational.experiment import DataConfig, TrainSpec, run_experiment
        from harness.plugins.relational.models import ModelSpec

        data = DataConfig(setting=self.setting, templates=self.templates, **self.data_args)
        return run_experiment(data, ModelSpec(**self.model_args), TrainSpec(**self.train_args), ctx, self.threads)

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
