"""The hf engine against plain transformers: same scores, same greedy text, batching changes nothing."""

import pytest
import torch

from harness.backends import SamplingParams, load
from harness.backends.hf import HFLM, pull
from harness.errors import UsageError

PAIRS = [("The capital of France is", " Paris"), ("The capital of France is", " London"),
         ("The capital of France is ", "Berlin, of course"), ("Hello", " world, how are you"),
         ("2 + 2 =", " 4"), ("", "Just a sentence.")]
PROMPTS = ["The capital of France is", "Once upon a time, there", "def add(a, b):", "1, 2, 3,"]


def plain_loglikelihood(lm, context, continuation):
    """Sum of continuation logprobs from one forward pass over the concatenated tokens."""
    ctx, cont = lm._encode_pair(context, continuation)
    with torch.no_grad():
        logprobs = lm.module(torch.tensor([ctx + cont])).logits.float().log_softmax(-1)[0]
    return sum(logprobs[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont))


def test_loglikelihood_matches_a_plain_forward(smollm2):
    for (context, continuation), (logprob, _) in zip(PAIRS, smollm2.loglikelihood(PAIRS)):
        assert logprob == pytest.approx(plain_loglikelihood(smollm2, context, continuation), abs=1e-3)


def test_is_greedy(smollm2):
    (paris, greedy), (london, not_greedy) = smollm2.loglikelihood(PAIRS[:2])
    assert greedy and not not_greedy and paris > london


def test_greedy_generation_matches_transformers(smollm2):
    outputs = smollm2.generate(PROMPTS, SamplingParams(max_tokens=16))
    for prompt, (completion,) in zip(PROMPTS, outputs):
        ids = smollm2.tokenizer(prompt, return_tensors="pt")
        reference = smollm2.module.generate(**ids, max_new_tokens=16, do_sample=False)[0, ids.input_ids.shape[1]:]
        assert completion.token_ids == reference.tolist()[: len(completion.token_ids)]
        assert len(completion.logprobs) == len(completion.token_ids)


def test_batching_changes_nothing(smollm2):
    one_at_a_time = HFLM(pull("smollm2"), batch_tokens=1)
    singles, batched = one_at_a_time.loglikelihood(PAIRS), smollm2.loglikelihood(PAIRS)
    assert [s[0] for s in singles] == pytest.approx([b[0] for b in batched], abs=1e-4)
    assert [s[1] for s in singles] == [b[1] for b in batched]
    greedy = SamplingParams(max_tokens=12)
    assert [c[0].text for c in one_at_a_time.generate(PROMPTS, greedy)] == \
        [c[0].text for c in smollm2.generate(PROMPTS, greedy)]
    assert one_at_a_time.loglikelihood_rolling(["A short text."]) == \
        pytest.approx(smollm2.loglikelihood_rolling(["A short text."]), abs=1e-4)


def test_rolling_equals_loglikelihood_from_the_prefix_token(smollm2):
    text = "The quick brown fox jumps over the lazy dog."
    (rolling,) = smollm2.loglikelihood_rolling([text])
    assert rolling == pytest.approx(smollm2.loglikelihood([("", text)])[0][0], abs=1e-4)


def test_sampling_is_seeded_and_independent_of_the_batch(smollm2):
    params = SamplingParams(n=4, temperature=1.0, max_tokens=10, seed=7)
    alone = smollm2.generate(["Tell me a joke"], params)[0]
    batched = smollm2.generate(["Some other prompt", "Tell me a joke"], params)[1]
    assert [c.text for c in alone] == [c.text for c in batched]
    assert len({c.text for c in alone}) > 1  # n samples differ from each other
    other_seed = smollm2.generate(["Tell me a joke"], SamplingParams(n=4, temperature=1.0, max_tokens=10, seed=8))
    assert [c.text for c in other_seed[0]] != [c.text for c in alone]


def test_stop_strings_and_finish_reasons(smollm2):
    (completion,), = smollm2.generate(["1, 2, 3,"], SamplingParams(max_tokens=20, stop=(" 6",)))
    assert completion.finish_reason == "stop" and " 6" not in completion.text and "5" in completion.text
    (completion,), = smollm2.generate(["1, 2, 3,"], SamplingParams(max_tokens=3))
    assert completion.finish_reason == "length" and len(completion.token_ids) == 3


def test_ignore_eos_always_gives_max_tokens(smollm2):
    (completion,), = smollm2.generate(["Say nothing."], SamplingParams(max_tokens=24, ignore_eos=True,
                                                                        temperature=1.0, seed=0))
    assert len(completion.token_ids) == 24 and smollm2.eos_token_id not in completion.token_ids


def test_bfloat16_scores_stay_close_to_float32(smollm2):
    bf16 = load("hf:smollm2", dtype="bfloat16")
    assert bf16.fingerprint != smollm2.fingerprint
    for (a, _), (b, _) in zip(bf16.loglikelihood(PAIRS), smollm2.loglikelihood(PAIRS)):
        assert a == pytest.approx(b, abs=0.15 * max(1.0, abs(b)))


def test_chat_template_changes_prompt_and_fingerprint(smollm2):
    chat = load("hf:smollm2", chat=True)
    assert chat.fingerprint != smollm2.fingerprint and "chat=off" not in chat.fingerprint
    assert chat.apply_chat("hi").startswith("<|im_start|>")
    (completion,), = chat.generate(["What is the capital of France?"], SamplingParams(max_tokens=16))
    assert "Paris" in completion.text


def test_white_box_surface(smollm2):
    ids = torch.tensor([smollm2.encode("Hello there")])
    embeds = smollm2.embedding_matrix[ids]
    logits = smollm2.forward_embeddings(embeds)
    assert logits.dtype == torch.float32 and logits.shape == (1, ids.shape[1], smollm2.embedding_matrix.shape[0])
    assert torch.allclose(logits, smollm2.module(ids).logits.float(), atol=1e-4)


@pytest.mark.parametrize("spec, args, message", [
    ("hf:nonexistent", {}, "unknown model 'nonexistent'"),
    ("hf:smollm2", {"dtype": "float8"}, "dtype=float8"),
    ("hf:", {}, "needs a model"),
])
def test_bad_specs_are_usage_errors(spec, args, message):
    with pytest.raises(UsageError, match=message):
        load(spec, **args)
