"""ntk: when is the NTK approximation valid? (arXiv 2305.13141)

Registers the task ``ntk``: a model scaled by alpha trained beside its linearisation at init; the alpha needed to
keep them close until time T, fitted against T (the paper: alpha = O(T) suffices). Torch loads only in ``run``.
"""

from __future__ import annotations

from harness import hookimpl


@hookimpl
def harness_register_tasks(register):
    from harness.plugins.ntk.task import NTKValidity

    register(
        "ntk",
        NTKValidity,
        description="lazy training vs its linearisation: alpha needed until time T (arXiv 2305.13141)",
    )
