"""harness/backends/tokens.py: the tokens a request scores, with SmolLM2's tokenizer (the tiny model's)."""

import pytest

from harness.backends.tokens import encode_pair, fit_window, lead_tokens, prompt_tokens, rolling_windows
from harness.errors import UsageError


@pytest.fixture(scope="module")
def tokenizer(tiny_folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_folder, local_files_only=True)


def test_a_pair_splits_where_the_joint_tokenization_does(tokenizer):
    ctx, cont = encode_pair(tokenizer, 0, "The capital of France is ", "Paris")
    whole = tokenizer("The capital of France is Paris", add_special_tokens=False)["input_ids"]
    assert ctx + cont == whole  # the trailing space moved into the continuation: " Paris" is one token
    assert tokenizer.decode(cont) == " Paris"
    assert encode_pair(tokenizer, 7, "", "Hi")[0] == [7]  # an empty context: the prefix token
    assert lead_tokens(tokenizer) == []  # SmolLM2 puts nothing before a prompt


def test_prompt_tokens_carry_their_character_offsets(tokenizer):
    ids, offsets = prompt_tokens(tokenizer, "Hello there, world", 100)
    assert ids == tokenizer("Hello there, world")["input_ids"]
    assert [tokenizer.decode(ids[:j]) for j in range(1, len(ids))] == ["Hello there, world"[:o] for o in offsets[1:]]
    last_two, tail = prompt_tokens(tokenizer, "Hello there, world", 2)
    assert last_two == ids[-2:] and tail == offsets[-2:]
    assert prompt_tokens(tokenizer, ids, 100) == (ids, offsets)  # token ids: offsets into their decoded text


def test_the_window_keeps_the_end_of_the_context():
    assert fit_window([1, 2, 3, 4, 5], [6, 7], 4) == ([4, 5], [6, 7])
    assert fit_window([1, 2], [3], 8) == ([1, 2], [3])
    with pytest.raises(UsageError, match="continuation of 4 tokens exceeds the model's 4"):
        fit_window([1], [1, 2, 3, 4], 4)


def test_rolling_windows_cover_every_token_once():
    windows = rolling_windows(list(range(10, 17)), [1], 4)
    assert [cont for _, cont in windows] == [[10, 11, 12], [13, 14, 15], [16]]
    assert windows[1][0] == [1, 10, 11, 12]  # the lead and all the text before; fit_window cuts it
    assert rolling_windows([], [1], 4) == []
