"""The built-in model parts, registered through ``harness_register_components`` like a plugin's.

Factories import torch only when called, so ``harness list components`` stays light.
"""

from __future__ import annotations

from harness.hookspecs import hookimpl


def _part(name: str):
    def factory(config, layer_index: int):
        from harness.models import components

        return getattr(components, name)(config, layer_index)

    factory.__name__ = name
    return factory


@hookimpl
def harness_register_components(register):
    register(
        "attention",
        "sdpa",
        _part("sdpa_attention"),
        description="multi-head causal self-attention (PyTorch SDPA), learned or rotary positions",
    )
    register("ffn", "gelu", _part("gelu_ffn"), description="Linear -> GELU (tanh) -> Linear")
    register("ffn", "relu", _part("relu_ffn"), description="Linear -> ReLU -> Linear")
    register("ffn", "swiglu", _part("swiglu_ffn"), description="gated SiLU FFN of Llama/Mistral")
    register("norm", "layernorm", _part("layernorm"), description="LayerNorm")
    register("norm", "rmsnorm", _part("rmsnorm"), description="RMSNorm (eps 1e-6)")
