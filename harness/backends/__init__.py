"""One request API over several engines. Engines are registered by plugins through
``harness_register_backends``; the built-in ones (hf, vllm, openai, scratch) too."""

from __future__ import annotations

from harness.backends.base import LM, Completion, SamplingParams
from harness.errors import UsageError


def split_spec(spec: str) -> tuple[str, str]:
    """'hf:smollm2' -> ('hf', 'smollm2'); 'scratch' -> ('scratch', '')."""
    scheme, _, target = spec.partition(":")
    return scheme, target


def load(spec: str, **model_args) -> LM:
    """Build the engine named by ``spec`` (``scheme:target``) with ``model_args``.

    A factory that names its options (``factory(target, dtype="float32")``) has them checked here; one that takes
    ``**model_args`` checks them itself (the built-in engines: ``LM.check_args`` against the engine's signature)."""
    import inspect

    from harness.options import validate
    from harness.registry import lookup

    scheme, target = split_spec(spec)
    if not scheme:
        raise UsageError("empty --model: give SCHEME:TARGET, e.g. --model hf:smollm2")
    factory = lookup("backends", scheme).factory
    try:
        first = list(inspect.signature(factory).parameters)[:1]  # the target
    except (TypeError, ValueError):
        first = []
    validate(factory, model_args, f"backend '{scheme}'", "--model-args", skip=tuple(first))
    return factory(target, **model_args)


__all__ = ["LM", "Completion", "SamplingParams", "load", "split_spec"]
