"""graph_cot: sequential vs parallel test-time scaling on graph connectivity (arXiv 2505.21825).

Registers the task family ``graph_cot`` (experiment with ``--model scratch``, evaluation with any LM
backend) and
the backend scheme ``baseline`` (``baseline:random-path``, ``baseline:random-shortest-path``). Nothing
heavy is
imported here: torch loads only when an experiment runs.
"""

from __future__ import annotations

from harness import hookimpl


def _baseline(target: str, **model_args):
    from harness.plugins.graph_cot.baselines import make_baseline

    return make_baseline(target, **model_args)


@hookimpl
def harness_register_tasks(register):
    from harness.plugins.graph_cot.task import GraphCoT

    register("graph_cot", GraphCoT, description="Bridge(d) connectivity: one long CoT vs many short ones")


@hookimpl
def harness_register_backends(register):
    register(
        "baseline",
        _baseline,
        description="graph_cot policies without training (baseline:random-path, baseline:random-shortest-path)",
    )
