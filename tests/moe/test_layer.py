"""The MoE layer: vectorised routing equals a per-input loop, the active size does not depend on granularity, and
the ffn:moe component works inside a harness Transformer."""

import pytest
import torch
from harness.plugins.moe.layer import MoE, MoEConfig, active_parameters

from harness.errors import UsageError


def loop_reference(layer: MoE, x: torch.Tensor) -> torch.Tensor:
    """One input at a time, one selected expert at a time: the definition written out."""
    rows = []
    for xi in x:
        top_logits, chosen = layer.gate(xi).topk(layer.config.top_k)
        weights = top_logits.softmax(-1)
        out = torch.zeros(layer.config.d_out)
        for weight, e in zip(weights, chosen.tolist()):
            out = out + weight * (torch.relu(xi @ layer.w_in[e] + layer.b_in[e]) @ layer.w_out[e])
        rows.append(out)
    return torch.stack(rows)


@pytest.mark.parametrize("m, k", [(8, 1), (8, 2), (16, 4), (4, 4), (32, 8)])
def test_routing_equals_loop_reference(one_thread, m, k):
    layer = MoE(
        MoEConfig(d_in=6, d_out=3, n_experts=m, top_k=k, active_hidden=16),
        generator=torch.Generator().manual_seed(m * 10 + k),
    )
    x = torch.randn(53, 6, generator=torch.Generator().manual_seed(1), requires_grad=True)
    fast, slow = layer(x), loop_reference(layer, x)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    # gradients too: with respect to the input and every parameter (gate included, through the softmax)
    probe = torch.randn_like(fast)
    grads_fast = torch.autograd.grad((fast * probe).sum(), [x, *layer.parameters()])
    grads_slow = torch.autograd.grad((slow * probe).sum(), [x, *layer.parameters()])
    for a, b in zip(grads_fast, grads_slow):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_batched_leading_dims_and_unbalanced_routing(one_thread):
    """(B, T, d) inputs, and a gate that sends every input to the same experts (capacity = all inputs)."""
    layer = MoE(MoEConfig(d_in=4, d_out=4, n_experts=8, top_k=2, active_hidden=8))
    with torch.no_grad():
        layer.gate.weight.zero_()
        layer.gate.weight[3, 0] = 5.0  # every input with x[0] > 0 picks expert 3 first
    x = torch.randn(2, 7, 4)
    x[..., 0] = x[..., 0].abs() + 1
    torch.testing.assert_close(layer(x), loop_reference(layer, x.reshape(-1, 4)).reshape(2, 7, 4))


def test_active_parameters_constant_across_granularity():
    d_in, d_out, hidden = 12, 1, 64
    counts, totals = set(), set()
    for k in (1, 2, 4, 8, 16):
        for multiple in (1, 2, 4):
            layer = MoE(MoEConfig(d_in, d_out, n_experts=2 * k * multiple, top_k=k, active_hidden=hidden))
            counts.add(active_parameters(layer)["expert"])
            totals.add(sum(p.numel() for p in layer.parameters()))
            assert layer.config.expert_width * k == hidden
    assert counts == {hidden * (d_in + 1 + d_out)}  # one number for every k and m
    assert len(totals) > 5  # while the total size grows with the number of experts


def test_bad_sizes_are_usage_errors():
    with pytest.raises(UsageError, match="top_k"):
        MoEConfig(4, 1, n_experts=2, top_k=4)
    with pytest.raises(UsageError, match="divisible"):
        MoEConfig(4, 1, n_experts=8, top_k=3, active_hidden=32)


def test_moe_ffn_inside_a_transformer(one_thread):
    from harness.models import ModelConfig, build_model

    sizes = {}
    for k in (1, 2, 4):
        config = ModelConfig(
            vocab_size=11, n_layer=2, n_head=2, d_model=16, d_ff=32, ffn="moe", options={"n_experts": 2 * k, "top_k": k}
        )
        model = build_model(config)
        ids = torch.randint(0, 11, (3, 5))
        loss = model.loss(ids, ids)
        loss.backward()
        assert torch.isfinite(loss) and model.blocks[0].ffn.w_in.grad.abs().sum() > 0
        sizes[k] = active_parameters(model.blocks[0].ffn)["expert"]
    assert len(set(sizes.values())) == 1
    with pytest.raises(UsageError, match="top_k"):
        build_model(ModelConfig(vocab_size=11, d_model=16, n_head=2, ffn="moe", options={"n_experts": 2, "top_k": 3}))
