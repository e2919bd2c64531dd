"""The relational plugin's identity-augmented attention (arXiv 2310.09753)."""

import torch
import torch.nn.functional as F
from harness.plugins.relational.attention import IdentityAttention

from harness.models import ModelConfig, build_model


def make_attention(**overrides) -> IdentityAttention:
    torch.manual_seed(0)
    return IdentityAttention(ModelConfig(vocab_size=16, d_model=32, n_head=4, max_seq_len=16, **overrides))


def test_starts_as_plain_attention():
    attn, x = make_attention(), torch.randn(2, 7, 32)
    q, k, v = (attn.split_heads(p(x)) for p in (attn.q_proj, attn.k_proj, attn.v_proj))
    plain = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(2, 7, 32)
    torch.testing.assert_close(attn(x), attn.o_proj(plain))


def test_never_looks_at_the_future():
    attn, x = make_attention(), torch.randn(1, 9, 32)
    with torch.no_grad():
        attn.identity_logit.fill_(2.0)
        attn.identity_value.fill_(1.0)
    changed = x.clone()
    changed[:, 5:] = torch.randn(1, 4, 32)
    torch.testing.assert_close(attn(x)[:, :5], attn(changed)[:, :5])


def test_identity_terms_attend_to_and_copy_the_same_token():
    """With W_Q = W_K = W_V = W_O = 0, a large a_h and b_h = 1, the last position copies the earlier equal vector."""
    attn = make_attention(bias=False)
    with torch.no_grad():
        for proj in (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj):
            proj.weight.zero_()
        attn.identity_logit.fill_(50.0)
        attn.identity_value.fill_(1.0 / attn.n_head)
    vectors = F.normalize(torch.randn(5, 32), dim=-1) * 32**0.5
    x = torch.stack([vectors[0], vectors[1], vectors[2], vectors[3], vectors[1]]).unsqueeze(0)
    out = attn(x)
    torch.testing.assert_close(out[0, -1], vectors[1], atol=1e-3, rtol=1e-3)


def test_model_builds_it_by_name_from_the_registry():
    model = build_model(ModelConfig(vocab_size=16, d_model=32, n_head=4, n_layer=2, attention="identity"))
    assert isinstance(model.blocks[0].attn, IdentityAttention)
    assert model(torch.randint(0, 16, (2, 8))).shape == (2, 8, 16)
