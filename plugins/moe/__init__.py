"""moe: granularity and expressivity of mixtures of experts (arXiv 2505.06839).

Registers the component ``ffn:moe`` (a top-k mixture of ReLU experts for from-scratch transformers:
``ModelConfig(ffn="moe", options={"n_experts": 8, "top_k": 2})``) and the student-teacher task
``moe_granularity``. Torch is imported only when a part is built or a task runs.
"""

from __future__ import annotations

from harness import hookimpl


def moe_ffn(config, layer_index: int):
    from harness.plugins.moe.layer import moe_ffn as build

    return build(config, layer_index)


@hookimpl
def harness_register_components(register):
    register(
        "ffn",
        "moe",
        moe_ffn,
        description="top-k mixture of ReLU experts (options n_experts, top_k; "
        "active hidden units = d_ff for every top_k)",
    )


@hookimpl
def harness_register_tasks(register):
    from harness.plugins.moe.task import MoEGranularity

    register(
        "moe_granularity",
        MoEGranularity,
        description="student-teacher MoE: can students of lower granularity fit a finer teacher?",
    )
