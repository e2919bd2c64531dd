"""harness/backends/fused.py computes the same hidden states as transformers' own forward, and declines the models
it does not describe."""

import pytest
import torch
from tiny import save_tiny_gemma3, save_tiny_llama

from harness.backends.fused import FusedForward, supports
from harness.backends.hf import HFLM

ROWS = [[1, 5, 9, 200, 7, 7, 31], [4, 8], [300, 2, 2, 2, 1000]]


def hidden_both_ways(lm: HFLM) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ids, mask = lm._left_pad(ROWS)
    with torch.inference_mode():
        reference, _ = lm._hidden(ids, mask, use_cache=False)
        return reference, FusedForward(lm.module)(ids, mask), mask.bool()


def test_fused_forward_equals_transformers_on_real_tokens(tiny, one_thread):
    assert supports(tiny.module)
    reference, fused, real = hidden_both_ways(tiny)
    torch.testing.assert_close(fused[real], reference[real], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(fused).all()  # padding queries see themselves: no NaN even where nothing is read


def test_fused_forward_in_bfloat16_stays_near_float32(tiny_folder, tiny, one_thread):
    reference, _, real = hidden_both_ways(tiny)
    _, fused, _ = hidden_both_ways(HFLM(tiny_folder, dtype="bfloat16"))
    error = (fused[real].float() - reference[real]).abs().max() / reference[real].abs().max()
    assert error < 0.05


def test_fused_copies_follow_the_weights(tiny, one_thread):
    forward = FusedForward(tiny.module)
    ids, mask = tiny._left_pad(ROWS)
    before = forward(ids, mask)
    norm = tiny.module.model.layers[0].input_layernorm.weight
    with torch.no_grad():
        norm.mul_(2.0)
    try:
        after, (reference, _) = forward(ids, mask), tiny._hidden(ids, mask, use_cache=False)
    finally:
        with torch.no_grad():
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
    assert not supports(lm.module) and lm._fused is None
    assert HFLM(save_tiny_llama(tmp_path / "llama"), fused=False)._fused is None
