"""Where things live on disk: the cache (converted models, the response cache) and the results folder."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Converted models and the response cache: ``$HARNESS_CACHE``, default ~/.cache/harness."""
    return Path(os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "harness")


def out_dir(out: str | None = None) -> Path:
    """The results folder: ``--out``, else ``$HARNESS_OUT``, else ./runs. An empty ``--out ''`` (an unset shell
    variable, usually) is refused rather than read as "the default": results would land somewhere not asked for."""
    if out is not None and not str(out).strip():
        from harness.errors import UsageError

        raise UsageError("--out '': give a results folder, e.g. --out runs (or leave --out out for ./runs)")
    return Path(out or os.environ.get("HARNESS_OUT") or "runs")
