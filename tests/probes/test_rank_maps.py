"""The rank probe reads the maps an attention really applies: checked against the module's own forward pass."""

from __future__ import annotations

import pytest
import torch
from harness.plugins.relational.attention import IdentityAttention

from harness.models import ModelConfig
from harness.probes.rank import RankProbe, attention_modules, effective_maps

pytestmark = pytest.mark.usefixtures("one_thread")


def identity_layer(seed: int = 0) -> IdentityAttention:
    """A hand-built identity-attention layer: no biases, random projections, known a_h and b_h."""
    torch.manual_seed(seed)
    layer = IdentityAttention(ModelConfig(d_model=8, n_head=2, bias=False, causal=True, max_seq_len=5))
    with torch.no_grad():
        for proj in (layer.q_proj, layer.k_proj, layer.v_proj, layer.o_proj):
            proj.weight.normal_(0, 0.5)
        layer.identity_logit.copy_(torch.tensor([0.7, -0.3]))
        layer.identity_value.copy_(torch.tensor([-0.4, 1.1]))
    return layer


def forward_from_maps(maps: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Causal attention written with the effective maps alone: sum_h softmax(X M_qk X^T) X M_vo."""
    T = x.shape[1]
    logits = torch.einsum("btc,hcd,bsd->bhts", x, maps["qk"], x)  # (B, nh, T, T)
    logits = logits.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return torch.einsum("bhts,bsc,hcd->btd", logits.softmax(-1), x, maps["vo"])


def test_effective_maps_reproduce_identity_attention():
    layer = identity_layer()
    x = torch.randn(3, 5, 8)
    with torch.no_grad():
        expected = layer(x)
    assert torch.allclose(forward_from_maps(effective_maps(layer), x), expected, atol=1e-5)
    with torch.no_grad():  # without a_h I and b_h I the maps no longer describe the layer
        layer.identity_logit.zero_()
        layer.identity_value.zero_()
        plain = effective_maps(layer)
        layer.identity_logit.copy_(torch.tensor([0.7, -0.3]))
        layer.identity_value.copy_(torch.tensor([-0.4, 1.1]))
    assert not torch.allclose(forward_from_maps(plain, x), expected, atol=1e-2)


def test_probe_sees_a_change_of_a_h_alone():
    """Moving a_0 by 0.5 changes head 0's QK map by 0.5 I: every singular value 0.5, stable rank C."""
    layer = identity_layer()
    probe = RankProbe(top=8)
    probe.start(layer)
    with torch.no_grad():
        layer.identity_logit[0] += 0.5
        layer.identity_value[1] -= 0.25
    values = probe(1, layer, {}, {})
    assert values["rank/attn.H0/qk/stable_rank"] == pytest.approx(8.0, rel=1e-4)
    assert values["rank/attn.H0/qk/sv7"] == pytest.approx(0.5, rel=1e-4)
    assert values["rank/attn.H1/vo/sv0"] == pytest.approx(0.25, rel=1e-4)
    assert values["rank/attn.H1/qk/stable_rank"] == values["rank/attn.H0/vo/stable_rank"] == 0.0


def test_plain_attention_map_is_the_logit_map():
    """sdpa's QK map carries the 1/sqrt(d_head) of its logits: identity attention with a = b = 0 equals it."""
    layer = identity_layer()
    with torch.no_grad():
        layer.identity_logit.zero_()
        layer.identity_value.zero_()
        x = torch.randn(2, 5, 8)
        assert torch.allclose(forward_from_maps(effective_maps(layer), x), layer(x), atol=1e-5)


def test_module_with_its_own_maps_is_read_through_them():
    class Custom(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(1))

        def effective_maps(self):
            return {"qk": self.scale * torch.diag(torch.tensor([3.0, 1.0, 0.0]))[None], "vo": torch.zeros(1, 3, 3)}

    model = torch.nn.Sequential(Custom())
    assert list(attention_modules(model)) == ["0"]
    probe = RankProbe()
    probe.start(model)
    with torch.no_grad():
        model[0].scale += 1.0
    values = probe(1, model, {}, {})
    assert values["rank/0.H0/qk/sv0"] == pytest.approx(3.0)
    assert values["rank/0.H0/qk/stable_rank"] == pytest.approx(10 / 9)
