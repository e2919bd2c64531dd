"""The one rule that turns a run's seed into random streams.

Every random stream in the harness (training batches, a prompt's n samples, a baseline's walk, an experiment's
data) is seeded by :func:`derive_seed` from the run seed and the parts that name the stream, e.g.
``derive_seed(seed, "sample", prompt, k)``. Streams named differently are independent; the same name gives the same
stream whatever else runs in the batch or the process.
"""

from __future__ import annotations

import hashlib
import random


def derive_seed(*parts) -> int:
    """A 63-bit seed from any printable parts (ints, strings, floats): sha256 of their joined reprs."""
    text = "\x1f".join(repr(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def rng(*parts) -> random.Random:
    """A Python ``random.Random`` on the stream named by ``parts``."""
    return random.Random(derive_seed(*parts))


def generator(*parts, device: str = "cpu"):
    """A torch ``Generator`` on the stream named by ``parts``."""
    import torch

    return torch.Generator(device=device).manual_seed(derive_seed(*parts))
