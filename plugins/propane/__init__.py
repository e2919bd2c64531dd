"""PROPANE prompt inversion (arXiv 2311.07064): find a prompt whose outputs match those of a given prompt.

Registers the optimizers ``propane`` (gradient-guided single-token swaps), ``random`` (the unguided baseline with
the same budget) and ``propane-soft`` (Adam on prompt embeddings), and the tasks ``propane_transfer`` (evaluate a
run's or a suite's prompts on another model, against random prompts), ``propane_compare`` (PROPANE vs random in one
run and one plot) and ``propane_suite`` (two search arms over a set of target prompts, a paired comparison: PROPANE
vs random search, or a warm start from the original prompt vs a start from random tokens).
Nothing heavy is imported here: torch loads when a factory's object runs.
"""

from __future__ import annotations

from harness.plugins.propane.runner import CompareTask, PropaneOptimizer, RandomSearch, SoftPropane
from harness.plugins.propane.suite import SuiteTask
from harness.plugins.propane.transfer import TransferTask

from harness.hookspecs import hookimpl


@hookimpl
def harness_register_optimizers(register):
    register("propane", PropaneOptimizer, description="PROPANE: gradient-guided token swaps (prompt inversion)")
    register("random", RandomSearch, description="random single-token swaps, PROPANE's budget (baseline)")
    register("propane-soft", SoftPropane, description="PROPANE soft prompt: Adam on prompt embeddings")


@hookimpl
def harness_register_tasks(register):
    register("propane_transfer", TransferTask, description="KL of a PROPANE run's prompts on another model")
    register("propane_compare", CompareTask, description="PROPANE vs random swaps, same budget, one plot")
    register("propane_suite", SuiteTask, description="two search arms over a prompt set, paired by prompt")
