"""relational: reasoning with abstract symbols (arXiv 2310.09753).

Registers the component ``attention:identity`` (attention that can match and copy tokens by identity), the task
family ``relational`` (template tasks trained from scratch; see task.py) and ``relational_llm`` (the same templates
in context, for any LM backend; see llm.py). The modules that import torch load only when used, so ``harness list``
stays light.
"""

from __future__ import annotations

from harness.hookspecs import hookimpl


def identity_attention(config, layer_index: int):
    from harness.plugins.relational.attention import IdentityAttention

    return IdentityAttention(config, layer_index)


@hookimpl
def harness_register_components(register):
    register(
        "attention",
        "identity",
        identity_attention,
        description="attention with W_Q W_K^T + a_h I and W_V W_O + b_h I per head (a_h, b_h from 0)",
    )


@hookimpl
def harness_register_tasks(register):
    from harness.plugins.relational.llm import RelationalLLM
    from harness.plugins.relational.task import Relational

    register(
        "relational",
        Relational,
        description="template tasks (aba vs abb, copy) over unseen symbols, trained from scratch",
    )
    register(
        "relational_llm",
        RelationalLLM,
        description="the template tasks in context: k labelled examples, then a query with unseen symbols",
    )
