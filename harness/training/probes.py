"""The probe machinery around the trainer.

A probe is any object with ``name``, ``layers(model) -> list[str]`` (module names whose inputs and output
gradients it needs; ``[]`` for none) and ``__call__(step, model, batch, captures) -> dict[str, float]``;
optionally ``start(model, trainer)``, called once before the first step with the model at its initial weights
(on resume, with a copy holding the initial weights saved in the run folder). Probes are registered with
``harness_register_probes`` and built from ``--probe`` names by :func:`probes_from_context`.

On a probe step (``step % probe_every == 0`` and step 1) the trainer records, for each requested layer, the
layer's first input and the gradient of the loss with respect to its output (``captures[name] = {"inputs":
(..., d_in), "grad_outputs": (..., d_out)}``, float32, detached). Probes and the ``harness_train_step`` hook
run after the backward pass and *before* the optimizer update, so weights, inputs and gradients all belong to
the same point (what FACT needs); ``step`` is the number of the update about to be applied. The gradient is
that of the loss the trainer minimises (usually a mean over the batch: see the fact probe for what that
implies).
"""

from __future__ import annotations

import inspect

from harness.errors import UsageError


def probes_from_context(ctx, **probe_args) -> list:
    """The probe objects named by ``--probe`` (``ctx.probes``); use with ``probe_every=ctx.probe_every``.

    ``probe_args`` go to every probe factory that accepts them (e.g. ``top=8`` for rank).
    """
    return make_probes(ctx.probes, **probe_args)


def make_probes(names, **probe_args) -> list:
    """Build registered probes by name; ``names`` may also be a RunContext (its ``--probe`` names)."""
    from harness.registry import lookup

    names = getattr(names, "probes", names)
    probes = []
    for name in names:
        factory = lookup("probes", name).factory
        params = inspect.signature(factory).parameters
        takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
        probes.append(factory(**{k: v for k, v in probe_args.items() if takes_all or k in params}))
    return [p for p in probes if p is not None]


class Captures:
    """Records the first input and the output gradient of named modules while active (a context manager)."""

    def __init__(self, model, names: list[str]):
        modules = dict(model.named_modules())
        missing = [n for n in names if n not in modules]
        if missing:
            raise UsageError(f"probe asked for unknown layers {missing}; layer names are model.named_modules()")
        self.modules = {name: modules[name] for name in names}
        self.data: dict[str, dict] = {}
        self.handles = []

    def _hook(self, name: str):
        def hook(module, inputs, output):
            record = self.data.setdefault(name, {})
            record["inputs"] = inputs[0].detach().float()
            if output.requires_grad:
                output.register_hook(lambda grad: record.__setitem__("grad_outputs", grad.detach().float()))

        return hook

    def __enter__(self):
        self.handles = [m.register_forward_hook(self._hook(n)) for n, m in self.modules.items()]
        return self.data

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()
        self.handles = []
