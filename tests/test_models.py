"""The from-scratch transformer, its registered parts, tokenizer and checkpoint folders."""

from __future__ import annotations

import pytest
import torch

from harness.errors import UsageError
from harness.models import (
    MLP,
    KVCache,
    ModelConfig,
    ResidualMLP,
    WordTokenizer,
    build_model,
    load_checkpoint_dir,
    save_checkpoint_dir,
)
from harness.registry import Plugins, get_plugins, set_plugins

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**overrides) -> ModelConfig:
    return ModelConfig(**{"vocab_size": 20, "n_layer": 2, "n_head": 2, "d_model": 16, "max_seq_len": 12, **overrides})


@pytest.mark.parametrize("positions", ["learned", "rotary", "sinusoidal"])
def test_lm_shapes_and_no_attention_to_the_future(positions):
    torch.manual_seed(0)
    model = build_model(tiny(positions=positions)).eval()
    ids = torch.randint(0, 20, (3, 10))
    logits = model(ids)
    assert logits.shape == (3, 10, 20)
    changed = ids.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 20
    after = model(changed)
    torch.testing.assert_close(after[:, :6], logits[:, :6])
    assert not torch.allclose(after[:, 6:], logits[:, 6:])


@pytest.mark.parametrize("causal", [True, False])
def test_grouped_attention_matches_sdpa(monkeypatch, causal):
    """Outputs and gradients of q, k, v agree with PyTorch's SDPA (float64: only the summation order differs)."""
    from harness.models import grouped_attention as grouped

    monkeypatch.setattr(grouped, "SCORES_BYTES", 3 * 9 * 9 * 8)  # 3 heads per group: 8 heads in 3 groups
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 9, 6, dtype=torch.float64, requires_grad=True) for _ in range(3))
    grad_out = torch.randn(2, 4, 9, 6, dtype=torch.float64)
    results = []
    for attend in (grouped.grouped_attention, torch.nn.functional.scaled_dot_product_attention):
        out = attend(q, k, v, causal) if attend is grouped.grouped_attention else attend(q, k, v, is_causal=causal)
        grads = torch.autograd.grad(out, (q, k, v), grad_out)
        results.append((out, *grads))
    for ours, reference in zip(*results):
        torch.testing.assert_close(ours, reference, rtol=1e-10, atol=1e-10)


def test_bfloat16_on_cpu_takes_the_grouped_path_and_stays_causal(monkeypatch):
    from harness.models import components
    from harness.models import grouped_attention as grouped

    dtypes = []

    def counted(q, *args):
        dtypes.append(q.dtype)
        return grouped.grouped_attention(q, *args)

    monkeypatch.setattr(components, "grouped_attention", counted)
    torch.manual_seed(0)
    model = build_model(tiny(positions="rotary")).eval()
    ids = torch.randint(0, 20, (3, 10))
    changed = ids.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 20
    with torch.autocast("cpu", dtype=torch.bfloat16):
        before, after = model(ids), model(changed)
    plain = model(ids)  # float32: PyTorch's SDPA
    assert dtypes == [torch.bfloat16] * 4  # 2 forwards x 2 layers, none from the float32 forward
    torch.testing.assert_close(after[:, :6], before[:, :6])
    assert not torch.allclose(after[:, 6:], before[:, 6:])
    torch.testing.assert_close(before.float(), plain, rtol=0.02, atol=0.02)


def test_positions_matter():
    """With positions, swapping two early tokens changes the last logits."""
    torch.manual_seed(0)
    for positions in ("learned", "rotary", "sinusoidal"):
        model = build_model(tiny(positions=positions)).eval()
        ids = torch.tensor([[1, 2, 3, 4, 5]])
        swapped = torch.tensor([[2, 1, 3, 4, 5]])
        assert not torch.allclose(model(ids)[0, -1], model(swapped)[0, -1])


def cached_logits(model, ids: torch.Tensor, prompt: int) -> torch.Tensor:
    """Logits of ``ids`` read as generation does: the first ``prompt`` tokens at once, then one token a call."""
    cache = KVCache(len(model.blocks))
    steps = [model(ids[:, :prompt], cache=cache)] + [model(ids[:, t : t + 1], cache=cache) for t in range(prompt, 10)]
    assert cache.length == 10
    return torch.cat(steps, dim=1)


@pytest.mark.parametrize("positions", ["learned", "rotary", "sinusoidal"])
@pytest.mark.parametrize("attention", ["sdpa", "identity"])
def test_generation_cache_gives_the_logits_of_a_full_read(positions, attention):
    """Read token by token through a KVCache, a model gives the logits of one pass over the whole sequence
    (identity attention with its a_h, b_h switched on, so its cached X is used too)."""
    torch.manual_seed(0)
    model = build_model(tiny(positions=positions, attention=attention)).eval()
    for name, param in model.named_parameters():
        if "identity" in name:
            param.data.fill_(0.5)
    assert model.supports_cache
    ids = torch.randint(0, 20, (3, 10))
    with torch.no_grad():
        full = model(ids)
        for prompt in (1, 4):
            assert torch.allclose(cached_logits(model, ids, prompt), full, atol=1e-5)
        # a chunk of several tokens after cached ones is masked causally too
        cache = KVCache(len(model.blocks))
        model(ids[:, :4], cache=cache)
        assert torch.allclose(model(ids[:, 4:], cache=cache), full[:, 4:], atol=1e-5)
        with pytest.raises(ValueError, match="max_seq_len"):
            model(ids[:, :3], cache=cache)  # 13 tokens in all: past the position table


def test_sinusoidal_positions_carry_parity_and_are_not_saved():
    """The fastest pair is (-1)^t (the parity a graph's edge list needs); the table is rebuilt from the config, so
    a checkpoint holds no position weights and loads into a model of another length."""
    from harness.models.model import sinusoids

    table = sinusoids(12, 16)
    assert torch.allclose(table[:, 1] / table[0, 1], torch.tensor([(-1.0) ** t for t in range(12)]), atol=1e-5)
    assert abs(table.pow(2).mean().sqrt().item() - 0.02) < 1e-3  # the learned table's scale at init
    model = build_model(tiny(positions="sinusoidal"))
    assert not any("pos" in name for name in model.state_dict())
    longer = build_model(tiny(positions="sinusoidal", max_seq_len=30))
    longer.load_state_dict(model.state_dict())


@pytest.mark.parametrize(
    "head,n_outputs,targets", [("cls", 3, torch.tensor([0, 2])), ("regression", 2, torch.randn(2, 2))]
)
def test_cls_and_regression_heads(head, n_outputs, targets):
    model = build_model(tiny(head=head, n_outputs=n_outputs))
    ids = torch.randint(0, 20, (2, 7))
    assert model(ids).shape == (2, n_outputs)
    assert model.loss(ids, targets).dim() == 0


def test_loss_mask_counts_only_masked_positions():
    torch.manual_seed(0)
    model = build_model(tiny())
    ids = torch.randint(0, 20, (2, 8))
    targets = torch.randint(0, 20, (2, 8))
    mask = torch.zeros(2, 8)
    mask[:, -1] = 1
    logits = model(ids)
    expected = torch.nn.functional.cross_entropy(logits[:, -1], targets[:, -1])
    torch.testing.assert_close(model.loss(ids, targets, mask), expected)


def test_tied_embeddings_and_init_scale():
    torch.manual_seed(0)
    model = build_model(tiny(tie_embeddings=True, init_scale=0.1))
    assert model.head.weight is model.tok_emb.weight
    assert model.tok_emb.weight.std() < 0.005  # 0.02 * 0.1
    assert model.norm_f.weight.eq(1).all()  # gains are not scaled


def test_bad_config_is_a_usage_error():
    with pytest.raises(UsageError, match="positions"):
        tiny(positions="alibi")
    with pytest.raises(UsageError, match="did you mean 'attention:sdpa'"):
        build_model(tiny(attention="sdpaa"))


def test_component_swap_through_a_plugin():
    previous = get_plugins()
    set_plugins(Plugins(extra_modules=["harness_testcomponents"]))
    try:
        torch.manual_seed(0)
        swapped = build_model(tiny(attention="test_double"))
        torch.manual_seed(0)
        plain = build_model(tiny())
    finally:
        set_plugins(previous)
    assert type(swapped.blocks[0].attn).__name__ == "DoubleAttention"
    ids = torch.randint(0, 20, (1, 5))
    x = plain.embed(ids)
    torch.testing.assert_close(swapped.blocks[0].attn(x), 2 * plain.blocks[0].attn(x))


def test_list_components_shows_builtins_and_plugins(cli):
    result = cli("-p", "harness_testcomponents", "list", "components")
    assert result.returncode == 0, result.stderr
    for name in ("attention:sdpa", "ffn:gelu", "ffn:swiglu", "norm:rmsnorm", "attention:test_double"):
        assert name in result.stdout


def test_word_tokenizer_roundtrip():
    tok = WordTokenizer(["a", "b", "c", "a"])
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.vocab_size) == (0, 1, 2, 6)
    assert tok.decode(tok.encode("a c  b")) == "a c b"
    again = WordTokenizer.from_json(tok.to_json())
    assert again.tokens == tok.tokens
    with pytest.raises(UsageError, match="'zz'"):
        tok.encode("a zz")
    assert WordTokenizer(["a"], specials=("<pad>", "<unk>")).encode("a q") == [2, 1]


def test_checkpoint_folder_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = build_model(tiny(positions="rotary", tie_embeddings=True, ffn="swiglu", norm="rmsnorm"))
    tok = WordTokenizer([f"w{i}" for i in range(17)])
    save_checkpoint_dir(tmp_path / "ck", model, tok, {"note": 1})
    loaded, tok2, extra = load_checkpoint_dir(tmp_path / "ck")
    ids = torch.randint(0, 20, (2, 6))
    torch.testing.assert_close(loaded(ids), model(ids))
    assert loaded.head.weight is loaded.tok_emb.weight
    assert tok2.tokens == tok.tokens and extra == {"note": 1}
    with pytest.raises(UsageError, match="no checkpoint"):
        load_checkpoint_dir(tmp_path / "missing")


def test_mlps(tmp_path):
    x = torch.randn(5, 4)
    for model in (MLP(4, 8, 3, depth=3), ResidualMLP(4, 8, 3, depth=2, task="classification")):
        assert model(x).shape == (5, 3)
        save_checkpoint_dir(tmp_path / type(model).__name__, model)
        loaded, _, _ = load_checkpoint_dir(tmp_path / type(model).__name__)
        torch.testing.assert_close(loaded(x), model(x))
    assert MLP(4, 8, 1).loss(x, torch.zeros(5, 1)).dim() == 0
