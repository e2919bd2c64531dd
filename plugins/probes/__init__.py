"""Built-in training probes: ``rank`` (spectrum of attention weight changes) and ``fact`` (Features at
Convergence Theorem residual). Select them with ``--probe rank,fact --probe-every K``.

The probe classes live in submodules that import torch; this module only registers factories.
"""

from __future__ import annotations

from harness.hookspecs import hookimpl


def rank_probe(top: int = 8, **_):
    from harness.probes.rank import RankProbe

    return RankProbe(top=top)


def fact_probe(weight_decay: float | None = None, fact_layers: list[str] | None = None, **_):
    from harness.probes.fact import FactProbe

    return FactProbe(weight_decay=weight_decay, layer_names=fact_layers)


@hookimpl
def harness_register_probes(register):
    register(
        "rank",
        rank_probe,
        description="per layer/head: spectrum and stable rank of the change in the effective QK and VO maps",
    )
    register(
        "fact",
        fact_probe,
        description="per linear layer: correlation of W^T W with the FACT right-hand side; the theorem needs "
        "full-batch SGD with L2 decay, no momentum or clipping (logs fact/setting)",
    )
