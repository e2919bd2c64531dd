"""The hf engine against plain transformers: same scores, same greedy tokens, and batching changes nothing.

The mechanics run on a tiny random Llama (fast); a few checks run on the real SmolLM2.
"""

import pytest
import torch

from harness.backends import SamplingParams, load
from harness.backends.batching import pack, runs
from harness.backends.hf import HFLM
from harness.backends.tokens import encode_pair
from harness.errors import UsageError

PAIRS = [
    ("The capital of France is", " Paris"),
    ("The capital of France is", " London"),
    ("The capital of France is ", "Berlin, of course"),
    ("Hello", " world, how are you"),
    ("2 + 2 =", " 4"),
    ("", "Just a sentence."),
]
PROMPTS = ["The capital of France is", "Once upon a time, there", "def add(a, b):", "1, 2, 3,"]
# 36 requests of varied lengths, several sharing a context, for batch size 1 vs 32
MANY_PAIRS = [(f"Item {i}: " + "word " * (i % 7), f" answer {i % 5}" + " more" * (i % 3)) for i in range(36)]
MANY_PROMPTS = [f"Prompt {i} " + "la " * (i % 9) for i in range(36)]


def tokens(lm, context, continuation):
    """The (context, continuation) token ids the engine scores for a request."""
    return encode_pair(lm.tokenizer, lm.prefix_token_id, context, continuation)


def plain_loglikelihood(lm, context, continuation):
    """Sum of continuation logprobs from one forward pass of the whole model over the concatenated tokens."""
    ctx, cont = tokens(lm, context, continuation)
    with torch.no_grad():
        logprobs = lm.module(torch.tensor([ctx + cont])).logits.float().log_softmax(-1)[0]
    return sum(logprobs[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont))


def test_smollm2_loglikelihood_matches_a_plain_forward(smollm2):
    scores = smollm2.loglikelihood(PAIRS)
    for (context, continuation), (logprob, _) in zip(PAIRS, scores):
        assert logprob == pytest.approx(plain_loglikelihood(smollm2, context, continuation), abs=1e-3)
    (paris, greedy), (london, not_greedy) = scores[:2]
    assert greedy and not not_greedy and paris > london


def test_smollm2_greedy_generation_matches_transformers(smollm2):
    ((completion,),) = smollm2.generate(PROMPTS[:1], SamplingParams(max_tokens=8))
    ids = smollm2.tokenizer(PROMPTS[0], return_tensors="pt")
    reference = smollm2.module.generate(**ids, max_new_tokens=8, do_sample=False)[0, ids.input_ids.shape[1] :]
    assert completion.token_ids == reference.tolist()


def test_loglikelihood_matches_a_plain_forward(tiny):
    pairs = MANY_PAIRS[:12] + PAIRS
    for (context, continuation), (logprob, _) in zip(pairs, tiny.loglikelihood(pairs)):
        assert logprob == pytest.approx(plain_loglikelihood(tiny, context, continuation), abs=1e-4)


def test_distinct_contexts_match_a_per_request_forward_at_every_budget(tiny_folder):
    """Contexts asked about once take the single-pass path (no cache, head only at scored positions): whatever the
    budget cuts the sorted rows into, each score and greedy flag is that of one plain forward per request."""
    pairs = [(f"Row {i}: " + "lo " * (i % 11), f" tail {i}" + " x" * (i % 4)) for i in range(20)]
    reference = HFLM(tiny_folder)
    plain = [plain_loglikelihood(reference, c, x) for c, x in pairs]
    encoded = [tokens(reference, c, x) for c, x in pairs]
    ((completion,),) = reference.generate(["Once more"], SamplingParams(max_tokens=3))
    greedy_ids = (reference.encode("Once more"), completion.token_ids)  # ids: random-model text need not round-trip
    for budget in (1, 40, 100_000):  # one row per forward, a few rows, all rows
        lm = HFLM(tiny_folder, score_tokens=budget)
        scores = lm.loglikelihood_tokens(encoded + [greedy_ids])
        assert [s[0] for s in scores[:-1]] == pytest.approx(plain, abs=1e-4)
        assert not any(greedy for _, greedy in scores[:-1]) and scores[-1][1]


def test_continuations_packed_after_their_context_match_separate_forwards(tiny):
    """Several continuations of one context share its row (each sees the context and itself only); an empty one
    scores 0 and counts as greedy."""
    context = "The list goes on and on:"
    pairs = [(context, " one"), (context, " two three four"), (context, ""), (context, " five six")]
    scores = tiny.loglikelihood(pairs)
    assert scores[2] == (0.0, True)
    for (c, x), (logprob, _) in zip(pairs, scores):
        if x:
            assert logprob == pytest.approx(plain_loglikelihood(tiny, c, x), abs=1e-4)


def test_groups_packed_into_shared_rows_match_separate_forwards(tiny):
    """Short contexts with their continuations lie back to back in one row, none seeing another; each gets the
    score of its own plain forward."""
    pairs = [(f"Case {i}:" + " so" * i * i, answer) for i in range(6) for answer in (" yes", " no way", "")]
    encoded = [tokens(tiny, c, x) for c, x in pairs]
    sizes = [len(encoded[g][0]) + sum(len(x) - 1 for _, x in encoded[g : g + 3]) for g in range(0, 18, 3)]
    assert len(pack(sizes, max(sizes))) < 6  # fewer rows than groups: some rows hold several
    for (context, continuation), (logprob, _) in zip(pairs, tiny.loglikelihood(pairs)):
        expected = plain_loglikelihood(tiny, context, continuation) if continuation else 0.0
        assert logprob == pytest.approx(expected, abs=1e-4)


def test_no_requests_give_no_results(tiny):
    assert tiny.loglikelihood([]) == [] and tiny.loglikelihood_rolling([]) == []
    assert tiny.generate([], SamplingParams(max_tokens=2)) == []


def test_is_greedy_means_argmax_at_every_position(tiny):
    context = "Once upon a time"
    ((completion,),) = tiny.generate([context], SamplingParams(max_tokens=4))
    prompt = tiny.encode(context)  # token ids, since random-model text need not re-tokenize the same way
    ((logprob, is_greedy), (_, changed)) = tiny.loglikelihood_tokens(
        [(prompt, completion.token_ids), (prompt, completion.token_ids[:3] + [42])]
    )
    assert is_greedy and not changed
    assert logprob == pytest.approx(sum(completion.logprobs), abs=1e-4)


def test_greedy_generation_matches_transformers(tiny):
    outputs = tiny.generate(MANY_PROMPTS[:6], SamplingParams(max_tokens=12))
    for prompt, (completion,) in zip(MANY_PROMPTS, outputs):
        ids = tiny.tokenizer(prompt, return_tensors="pt")
        reference = tiny.module.generate(**ids, max_new_tokens=12, do_sample=False)[0, ids.input_ids.shape[1] :]
        assert completion.token_ids == reference.tolist()
        assert len(completion.logprobs) == 12 and all(lp <= 0 for lp in completion.logprobs)


def test_batch_size_1_and_32_give_the_same_results(tiny, tiny_folder):
    one = HFLM(tiny_folder, batch_tokens=1, score_tokens=1, decode_tokens=1)  # every batch: one request
    many = HFLM(tiny_folder, batch_tokens=32 * 64, decode_tokens=32 * 64)
    singles, batched = one.loglikelihood(MANY_PAIRS), many.loglikelihood(MANY_PAIRS)
    assert [s[0] for s in singles] == pytest.approx([b[0] for b in batched], abs=1e-4)
    assert [s[1] for s in singles] == [b[1] for b in batched]
    greedy = SamplingParams(max_tokens=8)
    grouped = HFLM(tiny_folder, decode_tokens=32 * 64, prefill_tokens=48)  # prefilled in runs, decoded as one
    assert len(runs(sorted((len(tiny.encode(p)) for p in MANY_PROMPTS), reverse=True), 48)) > 3
    alone = one.generate(MANY_PROMPTS, greedy)
    for together in (many.generate(MANY_PROMPTS, greedy), grouped.generate(MANY_PROMPTS, greedy)):
        assert [c[0].token_ids for c in alone] == [c[0].token_ids for c in together]
        for a, b in zip(alone, together):
            assert a[0].logprobs == pytest.approx(b[0].logprobs, abs=1e-4)
    texts = [p + " " + c for p, c in MANY_PAIRS[:8]]
    assert one.loglikelihood_rolling(texts) == pytest.approx(many.loglikelihood_rolling(texts), abs=1e-4)


def test_a_roomy_cache_layer_holds_what_concatenation_would():
    from transformers import DynamicCache

    from harness.backends.kv_cache import make_room

    torch.manual_seed(0)
    past, steps = DynamicCache(), [torch.randn(4, 2, n, 8) for n in (5, 1, 1, 3)]  # the last step outgrows the room
    past.update(steps[0], -steps[0], 0)
    make_room(past, 2)
    for new in steps[1:]:
        keys, values = past.update(new, -new, 0)
    expected = torch.cat(steps, dim=-2)
    torch.testing.assert_close(keys, expected)
    torch.testing.assert_close(values, -expected)
    past.batch_select_indices(torch.tensor([3, 1]))
    past.batch_repeat_interleave(2)
    torch.testing.assert_close(past.layers[0].keys, expected[[3, 3, 1, 1]])
    assert past.get_seq_length() == 10


def test_a_prefix_shared_by_the_batch_gives_the_same_results(tiny, tiny_folder):
    preamble = "Answer with one word. Q: Is the sky blue? A: yes. Q: Is fire cold? A: no. Q: Is ice cold? A: yes. "
    assert len(tiny.encode(preamble)) > 16  # long enough that the batch computes it once
    prompts = [preamble + f"Q: Is {i} " + "very " * i + "even? A:" for i in range(6)]
    pairs = [(p, answer) for p in prompts for answer in (" yes", " no, it is odd")]
    one = HFLM(tiny_folder, batch_tokens=1, decode_tokens=1)
    singles, batched = one.loglikelihood(pairs), tiny.loglikelihood(pairs)
    assert [s[0] for s in singles] == pytest.approx([b[0] for b in batched], abs=1e-4)
    assert batched[0][0] == pytest.approx(plain_loglikelihood(tiny, *pairs[0]), abs=1e-4)
    greedy = SamplingParams(max_tokens=6)
    alone, together = one.generate(prompts, greedy), tiny.generate(prompts, greedy)
    assert [c[0].token_ids for c in alone] == [c[0].token_ids for c in together]
    for a, b in zip(alone, together):
        assert a[0].logprobs == pytest.approx(b[0].logprobs, abs=1e-4)


def test_rolling_equals_loglikelihood_from_the_prefix_token(tiny):
    text = "The quick brown fox jumps over the lazy dog."
    (rolling,) = tiny.loglikelihood_rolling([text])
    assert rolling == pytest.approx(tiny.loglikelihood([("", text)])[0][0], abs=1e-4)


def test_sampling_is_seeded_and_independent_of_the_batch(tiny, tiny_folder):
    params = SamplingParams(n=4, temperature=1.0, max_tokens=10, seed=7)
    alone = tiny.generate(["Tell me a joke"], params)[0]
    batched = tiny.generate(["Some other, longer prompt here", "Tell me a joke", "1, 2, 3,"], params)
    reordered = tiny.generate(["1, 2, 3,", "Tell me a joke", "Some other, longer prompt here"], params)
    one_at_a_time = HFLM(tiny_folder, decode_tokens=1).generate(["Tell me a joke"], params)[0]  # n rows, one each
    for other in (batched[1], reordered[1], one_at_a_time):
        assert [c.token_ids for c in other] == [c.token_ids for c in alone]
    assert [c.token_ids for c in batched[0]] == [c.token_ids for c in reordered[2]]
    assert len({tuple(c.token_ids) for c in alone}) > 1  # the n samples differ from each other
    other_seed = tiny.generate(["Tell me a joke"], SamplingParams(n=4, temperature=1.0, max_tokens=10, seed=8))
    assert [c.token_ids for c in other_seed[0]] != [c.token_ids for c in alone]


def test_other_prompts_get_independent_streams(tiny):
    """At temperature 1e6 every prompt's distribution is uniform to 1e-5, so a token is fixed by its uniform draw:
    prompts seeded by the sample index alone would all write the same tokens; their own streams write others."""
    prompts = MANY_PROMPTS[:6]
    params = SamplingParams(n=2, temperature=1e6, max_tokens=4, seed=3)
    outputs = tiny.generate(prompts, params)
    firsts = {tuple(c[0].token_ids) for c in outputs} | {tuple(c[1].token_ids) for c in outputs}
    assert len(firsts) == 2 * len(prompts)
    twice = tiny.generate([prompts[0], prompts[0]], params)  # the same prompt is the same stream
    assert [c.token_ids for c in twice[0]] == [c.token_ids for c in twice[1]] == [c.token_ids for c in outputs[0]]


def test_top_k_1_and_tiny_top_p_are_greedy(tiny):
    greedy = tiny.generate(PROMPTS, SamplingParams(max_tokens=6))
    for params in (
        SamplingParams(temperature=1.0, top_k=1, max_tokens=6, seed=1),
        SamplingParams(temperature=1.0, top_p=1e-6, max_tokens=6, seed=1),
    ):
        assert [c[0].token_ids for c in tiny.generate(PROMPTS, params)] == [c[0].token_ids for c in greedy]


def test_stop_strings_cut_the_text_and_finish_with_stop(tiny):
    ((full,),) = tiny.generate(["1, 2, 3,"], SamplingParams(max_tokens=16))
    assert full.finish_reason == "length" and len(full.token_ids) == 16
    stop = tiny.decode(full.token_ids[5:7]).strip()[:3]
    ((cut,),) = tiny.generate(["1, 2, 3,"], SamplingParams(max_tokens=16, stop=(stop,)))
    assert cut.finish_reason == "stop" and cut.text == full.text[: full.text.index(stop)]
    assert len(cut.token_ids) < 16
    params = SamplingParams(max_tokens=16, stop=(stop,))  # rows that stop early leave the batch; the rest go on
    together = tiny.generate(["1, 2, 3,"] + MANY_PROMPTS[:5], params)
    assert [c[0].token_ids for c in together] == [
        tiny.generate([p], params)[0][0].token_ids for p in ["1, 2, 3,"] + MANY_PROMPTS[:5]
    ]


def test_ignore_eos_keeps_sampling(smollm2):
    ((completion,),) = smollm2.generate(
        ["Say nothing."], SamplingParams(max_tokens=12, ignore_eos=True, temperature=1.0, seed=0)
    )
    assert len(completion.token_ids) == 12 and smollm2.eos_token_id not in completion.token_ids


def test_bfloat16_scores_stay_close_to_float32(tiny, tiny_folder):
    bf16 = HFLM(tiny_folder, dtype="bfloat16")
    assert bf16.fingerprint != tiny.fingerprint and "bfloat16" in bf16.fingerprint
    for (a, _), (b, _) in zip(bf16.loglikelihood(PAIRS), tiny.loglikelihood(PAIRS)):
        assert a == pytest.approx(b, abs=0.05 * max(1.0, abs(b)))
    ((completion,),) = bf16.generate(PROMPTS[:1], SamplingParams(max_tokens=4))
    assert len(completion.token_ids) == 4


def test_chat_template_changes_prompt_and_fingerprint(smollm2):
    chat = load("hf:smollm2", chat=True)
    assert chat.fingerprint != smollm2.fingerprint and "chat=off" not in chat.fingerprint
    assert chat.apply_chat("hi").startswith("<|im_start|>")
    ((completion,),) = chat.generate(["What is the capital of France?"], SamplingParams(max_tokens=12))
    assert "Paris" in completion.text


def test_white_box_surface(tiny):
    ids = torch.tensor([tiny.encode("Hello there")])
    assert tiny.decode(ids[0].tolist()).endswith("Hello there")
    embeds = tiny.embedding_matrix[ids]
    logits = tiny.forward_embeddings(embeds)
    assert logits.dtype == torch.float32 and logits.shape == (1, ids.shape[1], tiny.embedding_matrix.shape[0])
    assert torch.allclose(logits, tiny.module(ids).logits.float(), atol=1e-4)
    embeds = embeds.detach().requires_grad_(True)  # gradients flow to the embeddings (prompt search needs them)
    tiny.forward_embeddings(embeds)[0, -1].logsumexp(-1).backward()
    assert embeds.grad is not None and embeds.grad.abs().sum() > 0


def test_fingerprint_names_the_weights(tiny, tiny_folder, tmp_path):
    assert HFLM(tiny_folder).fingerprint == tiny.fingerprint
    with torch.no_grad():
        tiny.module.model.norm.weight.add_(1.0)
    try:
        tiny.module.save_pretrained(tmp_path)
        tiny.tokenizer.save_pretrained(tmp_path)
    finally:
        with torch.no_grad():
            tiny.module.model.norm.weight.sub_(1.0)
    assert HFLM(tmp_path).fingerprint != tiny.fingerprint


@pytest.mark.parametrize(
    "spec, args, message",
    [
        ("hf:nonexistent", {}, "unknown model 'nonexistent'"),
        ("hf:smollm2", {"dtype": "float8"}, "dtype=float8"),
        ("hf:", {}, "needs a model"),
        ("hf:smollm2", {"decod_tokens": 1}, "no option 'decod_tokens'.*did you mean 'decode_tokens'"),
        ("hf:smollm2", {"batch_tokens": "many"}, "'batch_tokens' must be int"),
        ("hf:smollm2", {"decode_tokens": 0}, "decode_tokens=0: give a positive number"),
    ],
)
def test_bad_specs_are_usage_errors(spec, args, message):
    with pytest.raises(UsageError, match=message):
        load(spec, **args)


def test_pull_reuses_the_converted_folder(smollm2):
    from harness.backends.weights import pull
    from harness.paths import cache_dir

    folder = pull("smollm2")
    assert folder == cache_dir() / "models" / "smollm2"
    assert (folder / "weights.sha256").exists() and list(folder.glob("*.safetensors"))
