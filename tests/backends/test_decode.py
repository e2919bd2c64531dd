"""harness/backends/decode.py's decode step computes what fused.py's general forward computes at a decode step, to
the bit, and generation through it gives the tokens of transformers' forward."""

import pytest
import torch

from harness.backends import SamplingParams
from harness.backends.batching import left_pad
from harness.backends.decode import StepCache, decode_step
from harness.backends.hf import HFLM

ROWS = [[1, 5, 9, 200, 7, 7, 31], [4, 8], [300, 2, 2, 2, 1000]]
STEPS = [[11, 12, 13], [14, 15, 16], [17, 18, 19]]  # three steps' tokens, for each row once repeated twice


def both_ways(lm: HFLM, packs: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(decode.py's hidden states, the general forward's) at each of three steps after a prefill of ROWS, each row
    repeated twice; after the first step the second row (both copies) leaves."""
    forward = lm.fused_forward
    forward.packs, forward.key = packs, None  # re-prepare the weights (packed or plain)
    ids, mask = left_pad(ROWS, lm.pad_token_id)
    out = []
    with torch.inference_mode():
        _, past = lm.hidden_states(ids, mask)
        cache = StepCache(past, mask, room=len(STEPS), repeats=2)
        past.batch_repeat_interleave(2)
        mask, keep = mask.repeat_interleave(2, 0), torch.arange(2 * len(ROWS))
        for s, tokens in enumerate(STEPS):
            if s == 1:  # the second row leaves
                keep = torch.tensor([0, 1, 4, 5])
                cache.select(keep)
                past.batch_select_indices(keep)
                mask = mask[keep]
            step = torch.tensor(tokens).repeat_interleave(2)[keep if s else slice(None)]
            positions = mask.sum(-1, keepdim=True)
            mask = torch.cat([mask, torch.ones_like(step)[:, None]], dim=1)
            general, past = lm.hidden_states(step[:, None], mask, past=past, positions=positions)
            out.append((decode_step(forward, step, cache), general[:, -1]))
    forward.packs, forward.key = True, None
    return out


@pytest.mark.parametrize("packs", [True, False], ids=["onednn-packed", "plain-linear"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_decode_steps_equal_the_general_forward_to_the_bit(tiny_folder, tiny, dtype, packs, one_thread):
    lm = tiny if dtype == "float32" else HFLM(tiny_folder, dtype=dtype)
    assert lm.fused_forward.packs  # a CPU with oneDNN: both ways are tested
    for fast, general in both_ways(lm, packs):
        assert fast.dtype == general.dtype and torch.equal(fast, general)


def test_a_step_past_the_room_is_refused(tiny):
    ids, mask = left_pad(ROWS, tiny.pad_token_id)
    with torch.inference_mode():
        _, past = tiny.hidden_states(ids, mask)
        cache = StepCache(past, mask, room=1)
        decode_step(tiny.fused_forward, torch.tensor([3, 4, 5]), cache)
        with pytest.raises(ValueError, match="no room"):
            decode_step(tiny.fused_forward, torch.tensor([3, 4, 5]), cache)


def test_generation_through_decode_steps_equals_the_transformers_forward(tiny, tiny_folder):
    """Greedy and sampled (n = 3, seeded): the same tokens and logprobs as the engine without fused.py
    (transformers' forward over a DynamicCache)."""
    plain = HFLM(tiny_folder, fused=False)
    prompts = ["one two three", "a much longer prompt than the first one here", "x"]
    for params in (SamplingParams(max_tokens=12), SamplingParams(max_tokens=9, n=3, temperature=1.0, seed=3)):
        ours, theirs = tiny.generate(prompts, params), plain.generate(prompts, params)
        for mine, reference in zip(ours, theirs):
            assert [c.token_ids for c in mine] == [c.token_ids for c in reference]
            for a, b in zip(mine, reference):
                assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


def test_streamed_tokens_are_the_completions(tiny):
    """on_step (harness serve's streaming) is told each decode step's tokens, which make up the completions."""
    told = []
    prompts = ["one two three", "a much longer prompt than the first one here"]
    done = tiny.generate(prompts, SamplingParams(max_tokens=6), on_step=lambda step: told.extend(step) or [])
    for p, (completion,) in enumerate(done):
        assert [t.token_id for t in told if t.prompt == p] == completion.token_ids
