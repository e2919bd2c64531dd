"""leap: SGD time complexity of targets with low-dimensional support (arXiv 2302.11055).

Registers the task ``leap``: online SGD steps for a two-layer network to learn a staircase, a leap-2 or a leap-3
target on isotropic data, against the dimension d (the conjecture: ~ d^max(Leap - 1, 1)). Torch loads only in
``run``.
"""

from __future__ import annotations

from harness import hookimpl


@hookimpl
def harness_register_tasks(register):
    from harness.plugins.leap.task import Leap

    register(
        "leap", Leap, description="online SGD steps to learn a low-dimensional target vs d, by leap (arXiv 2302.11055)"
    )
