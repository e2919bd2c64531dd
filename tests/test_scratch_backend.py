"""The scratch backend agrees with a plain forward pass of the model it serves."""

from __future__ import annotations

import pytest
import torch

from harness.backends import SamplingParams, load
from harness.errors import UsageError
from harness.models import ModelConfig, WordTokenizer, build_model, save_checkpoint_dir

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def lm(tmp_path):
    torch.manual_seed(0)
    tok = WordTokenizer(["a", "b", "c", "d"])
    model = build_model(
        ModelConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, d_model=16, max_seq_len=10, positions="rotary")
    )
    save_checkpoint_dir(tmp_path / "run" / "checkpoint", model, tok, {"add_bos": True})
    return load(f"scratch:{tmp_path / 'run'}")


@torch.no_grad()
def logprobs_of(lm, ids):
    return torch.log_softmax(lm.module(torch.tensor([ids])).float(), -1)[0]


def test_loglikelihood_matches_forward_pass(lm):
    (total, greedy), (other, _) = lm.loglikelihood([("a b", "c d"), ("a", "b")])
    ids = [lm.tokenizer.bos_id] + lm.encode("a b c d")
    lp = logprobs_of(lm, ids)
    expected = lp[2, ids[3]] + lp[3, ids[4]]
    assert total == pytest.approx(float(expected), abs=1e-5)
    assert greedy == bool(lp[2].argmax() == ids[3] and lp[3].argmax() == ids[4])
    (rolling,) = lm.loglikelihood_rolling(["a b c d"])
    assert rolling == pytest.approx(float(sum(lp[i, ids[i + 1]] for i in range(4))), abs=1e-5)


def test_greedy_generation_follows_the_argmax_and_batches_agree(lm):
    params = SamplingParams(max_tokens=4, temperature=0.0)
    together = lm.generate(["a b", "c", "d d d"], params)
    alone = lm.generate(["c"], params)
    assert together[1][0].token_ids == alone[0][0].token_ids
    ids = [lm.tokenizer.bos_id] + lm.encode("a b")
    for token in together[0][0].token_ids:
        lp = logprobs_of(lm, ids)[-1]
        if int(lp.argmax()) == lm.eos_token_id:
            break
        assert token == int(lp.argmax())
        ids.append(token)


def test_sampling_is_seeded_and_stops(lm):
    params = SamplingParams(n=3, temperature=1.0, max_tokens=5, seed=7, ignore_eos=True)
    first = lm.generate(["a", "b"], params)
    assert all(len(c.token_ids) == 5 and len(c.logprobs) == 5 for c in first[0])
    ids = [lm.tokenizer.bos_id] + lm.encode("a")
    for token, logprob in zip(first[0][0].token_ids[:2], first[0][0].logprobs):  # the model's logprob, untempered
        assert logprob == pytest.approx(float(logprobs_of(lm, ids)[-1, token]), abs=1e-5)
        ids.append(token)
    text = first[0][0].text
    stop = text.split()[1]
    stopped = lm.generate(["a"], SamplingParams(temperature=1.0, max_tokens=5, seed=7, ignore_eos=True, stop=(stop,)))[
        0
    ][0]
    assert stopped.finish_reason == "stop" and stop not in stopped.text


def test_samples_do_not_depend_on_the_batch(lm, tmp_path):
    params = SamplingParams(n=3, temperature=1.0, max_tokens=6, seed=7, ignore_eos=True)
    alone = lm.generate(["b"], params)[0]
    batched = lm.generate(["a", "b", "c d"], params)
    reordered = lm.generate(["c d", "b", "a"], params)
    one_row_per_forward = load(f"scratch:{tmp_path / 'run'}", batch_size=1).generate(["a", "b"], params)
    for other in (batched[1], reordered[1], one_row_per_forward[1]):
        assert [c.token_ids for c in other] == [c.token_ids for c in alone]
    assert [c.token_ids for c in batched[0]] == [c.token_ids for c in one_row_per_forward[0]]
    assert len({tuple(c.token_ids) for c in alone}) > 1


def test_other_prompts_get_independent_streams(lm):
    """At temperature 1e6 every distribution is uniform to 1e-5, so a token is fixed by its uniform draw: streams
    named by the sample index alone would give every prompt the same tokens."""
    prompts = ["a", "b", "c", "d", "a b", "c d"]
    outputs = lm.generate(prompts, SamplingParams(n=2, temperature=1e6, max_tokens=7, seed=3, ignore_eos=True))
    sequences = {tuple(c.token_ids) for completions in outputs for c in completions}
    assert len(sequences) == 2 * len(prompts)


def test_dtype_policy_and_model_args(lm, tmp_path):
    import os

    before = dict(os.environ)
    bf16 = load(f"scratch:{tmp_path / 'run'}", dtype="bfloat16", device="cpu")
    assert dict(os.environ) == before  # loading an engine sets no environment variable
    assert lm.dtype == "float32" and ":float32:" in lm.fingerprint
    assert bf16.module.tok_emb.weight.dtype == torch.bfloat16 and bf16.fingerprint != lm.fingerprint
    ((total, _),) = bf16.loglikelihood([("a b", "c")])
    assert total == pytest.approx(lm.loglikelihood([("a b", "c")])[0][0], abs=0.1)
    for args, message in [
        ({"dtype": "float8"}, "dtype=float8: choose one of float32, bfloat16, float16"),
        ({"btch_size": 2}, "did you mean 'batch_size'"),
        ({"batch_size": "x"}, "'batch_size' must be int"),
        ({"batch_size": 0}, "batch_size=0"),
    ]:
        with pytest.raises(UsageError, match=message):
            load(f"scratch:{tmp_path / 'nothing'}", **args)  # checked before the (missing) checkpoint is read


def test_white_box_surface_and_fingerprint(lm, tmp_path):
    ids = torch.tensor([lm.encode("a b c")])
    embeds = lm.embedding_matrix[ids]
    torch.testing.assert_close(lm.forward_embeddings(embeds), lm.module(ids))
    assert lm.decode(lm.encode("a b")) == "a b" and lm.fingerprint.startswith("scratch:")
    with pytest.raises(UsageError, match="no checkpoint"):
        load(f"scratch:{tmp_path / 'nothing'}")
