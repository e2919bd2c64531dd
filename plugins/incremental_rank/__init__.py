"""incremental_rank: transformers learn through gradual rank increase (arXiv 2306.07042).

Registers the task ``incremental_rank``. Nothing heavy is imported here: torch loads when the task runs.
"""

from __future__ import annotations

from harness import hookimpl


@hookimpl
def harness_register_tasks(register):
    from harness.plugins.incremental_rank.task import IncrementalRank

    register(
        "incremental_rank",
        IncrementalRank,
        description="small-init attention (diagonal toy, 1-layer transformer): loss plateaus vs rank jumps",
    )
    from harness.plugins.incremental_rank.vit import IncrementalRankViT

    register(
        "incremental_rank_vit",
        IncrementalRankViT,
        description="small ViT on scikit-learn's digits from init scale alpha by GD: per-head rank of Delta vs loss",
    )
