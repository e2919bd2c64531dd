"""Relational components (arXiv 2310.09753): attention that can match and copy tokens by identity.

Registers ``attention:identity``. The module that holds it imports torch; this one only registers the factory,
so ``harness list`` stays light.
"""

from __future__ import annotations

from harness.hookspecs import hookimpl


def identity_attention(config, layer_index: int):
    from harness.plugins.relational.attention import IdentityAttention

    return IdentityAttention(config, layer_index)


@hookimpl
def harness_register_components(register):
    register("attention", "identity", identity_attention,
             description="attention with W_Q W_K^T + a_h I and W_V W_O + b_h I per head (a_h, b_h from 0)")
