"""harness/backends/fused.py computes the same hidden states as transformers' own forward, and declines the models
it does not describe."""

import pytest
import torch
from tiny import save_tiny_gemma3, save_tiny_llama

from harness.backends.batching import left_pad
from harness.backends.fused import FusedForward, supports
from harness.backends.hf import HFLM

ROWS = [[1, 5, 9, 200, 7, 7, 31], [4, 8], [300, 2, 2, 2, 1000]]


@pytest.fixture(scope="module")
def plain(tiny_folder):
    """The tiny model through transformers' own forward."""
    return HFLM(tiny_folder, fused=False)


def hidden_both_ways(lm: HFLM, plain: HFLM, packs: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ids, mask = left_pad(ROWS, lm.pad_token_id)
    forward = FusedForward(lm.module)
    forward.packs = packs
    with torch.inference_mode():
        reference, _ = plain.hidden_states(ids, mask, use_cache=False)
        return reference, forward(ids, mask), mask.bool()


@pytest.mark.parametrize("packs", [True, False], ids=["onednn-packed", "plain-linear"])
def test_fused_forward_equals_transformers_on_real_tokens(tiny, plain, packs, one_thread):
    assert (
        supports(tiny.module) and tiny.fused_forward.packs
    )  # a CPU with oneDNN packs; other devices run plain F.linear
    reference, fused, real = hidden_both_ways(tiny, plain, packs)
    torch.testing.assert_close(fused[real], reference[real], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(fused).all()  # padding queries see themselves: no NaN even where nothing is read


def test_fused_forward_in_bfloat16_stays_near_float32(tiny_folder, tiny, plain, one_thread):
    reference, _, real = hidden_both_ways(tiny, plain)
    _, fused, _ = hidden_both_ways(HFLM(tiny_folder, dtype="bfloat16"), plain)
    error = (fused[real].float() - reference[real]).abs().max() / reference[real].abs().max()
    assert error < 0.05


def test_decoding_on_from_a_fused_prefill_equals_transformers(tiny, plain, one_thread):
    """The cache a fused prefill leaves and fused decode steps after it (explicit positions, keys wider than the
    queries) give transformers' hidden states and logits."""
    ids, mask = left_pad(ROWS, tiny.pad_token_id)
    step = torch.tensor([[11], [12], [13]])
    grown = torch.cat([mask, torch.ones_like(step)], dim=1)
    positions = mask.sum(-1, keepdim=True)
    with torch.inference_mode():
        outputs = []
        for lm in (tiny, plain):
            _, past = lm.hidden_states(ids, mask)
            hidden, _ = lm.hidden_states(step, grown, past=past, positions=positions)
            outputs.append((hidden, lm.vocab_logprobs(hidden[:, -1], scored=False)))
    (fused, fused_logprobs), (reference, reference_logprobs) = outputs
    torch.testing.assert_close(fused, reference, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fused_logprobs, reference_logprobs, atol=1e-4, rtol=1e-4)


def test_fused_copies_follow_the_weights(tiny, plain, one_thread):
    forward = FusedForward(tiny.module)
    ids, mask = left_pad(ROWS, tiny.pad_token_id)
    before = forward(ids, mask)
    norms = [lm.module.model.layers[0].input_layernorm.weight for lm in (tiny, plain)]
    with torch.no_grad():
        for norm in norms:
            norm.mul_(2.0)
    try:
        after, (reference, _) = forward(ids, mask), plain.hidden_states(ids, mask, use_cache=False)
    finally:
        with torch.no_grad():
            for norm in norms:
                norm.div_(2.0)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after[mask.bool()], reference[mask.bool()], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("change", ["gemma", "bias"])
def test_other_models_keep_the_transformers_forward(tmp_path, change):
    if change == "gemma":
        folder = save_tiny_gemma3(tmp_path)
    else:
        folder = save_tiny_llama(tmp_path)
        config = (folder / "config.json").read_text().replace('"attention_bias": false', '"attention_bias": true')
        (folder / "config.json").write_text(config)
    lm = HFLM(folder)
    assert not supports(lm.module) and lm.fused_forward is None
    assert HFLM(save_tiny_llama(tmp_path / "llama"), fused=False).fused_forward is None
