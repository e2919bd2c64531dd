"""From-scratch models with parts swappable by name, their tokenizer and their checkpoint folders.

Names are imported lazily so that the plugin module :mod:`harness.models.builtin` can be loaded (by
``harness list``) without importing torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ModelConfig": "harness.models.model",
    "KVCache": "harness.models.model",
    "Transformer": "harness.models.model",
    "build_model": "harness.models.model",
    "component": "harness.models.model",
    "MLP": "harness.models.mlp",
    "ResidualMLP": "harness.models.mlp",
    "WordTokenizer": "harness.models.tokenizer",
    "save_checkpoint_dir": "harness.models.checkpoint",
    "load_checkpoint_dir": "harness.models.checkpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'harness.models' has no attribute '{name}'")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
