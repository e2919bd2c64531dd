"""distill: PAC-distillation of a trained network into a decision tree (arXiv 2403.09053).

Registers the task ``distill``: train a residual MLP on a random decision tree (or load any scratch
checkpoint with Boolean inputs, ``--task-args checkpoint=PATH``), find the ANDs of literals its activations
represent with linear probes and a beam search, and assemble the best depth <= r tree by dynamic programming.
Torch and scikit-learn are imported only when the task runs.
"""

from __future__ import annotations

from harness import hookimpl


@hookimpl
def harness_register_tasks(register):
    from harness.plugins.distill.task import DistillTrees

    register(
        "distill",
        DistillTrees,
        description="distil a network into a depth-r decision tree with linear probes; CART baseline",
    )
