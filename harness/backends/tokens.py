"""Which tokens a request scores: the split of context and continuation, the special tokens before a prompt, the
cut to the model's window and the windows of a rolling loglikelihood.

Shared by the hf and vllm engines, so that both (and openai echo against a server of either) score the very same
tokens for the same request. Tokenizers are transformers' (anything callable with ``add_special_tokens``).
"""

from __future__ import annotations

from harness.errors import UsageError


def lead_tokens(tokenizer) -> list[int]:
    """The special tokens the tokenizer puts before every prompt (Gemma's <bos>; none for SmolLM2)."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    return full[: full.index(plain[0])] if plain and plain[0] in full else []


def encode_pair(tokenizer, prefix_token_id: int, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Context and continuation tokens, split where the joint tokenization puts the boundary.

    The context is encoded as a server encodes a prompt (the tokenizer's own leading special tokens, so hf, vllm and
    openai echo score the same tokens); an empty context becomes the prefix token, so the first continuation token
    is scored too. A trailing space of the context moves into the continuation, as lm-evaluation-harness does.
    """
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
    if whole[: len(ctx)] != ctx and whole[: len(ctx) - 1] == ctx[:-1]:
        ctx = ctx[:-1]  # the context's last token merged with the continuation's first
    return (lead_tokens(tokenizer) + ctx) or [prefix_token_id], whole[len(ctx) :]


def prompt_tokens(tokenizer, text: str | list[int], max_length: int) -> tuple[list[int], list[int]]:
    """(token ids, character offset of each) of a prompt as a server tokenizes it (special tokens included), its
    last ``max_length`` tokens. Token ids are taken as given, their offsets into their decoded text."""
    if isinstance(text, str):
        encoded = tokenizer(text, return_offsets_mapping=True)
        ids = encoded["input_ids"][-max_length:]
        return ids, [start for start, _ in encoded["offset_mapping"]][-len(ids) :]
    ids = list(text)[-max_length:]
    return ids, [len(tokenizer.decode(ids[:j], skip_special_tokens=True)) for j in range(len(ids))]


def fit_window(ctx: list[int], cont: list[int], max_length: int) -> tuple[list[int], list[int]]:
    """Cut the context from the left so that context + continuation fits a window of ``max_length`` tokens."""
    if len(cont) >= max_length:
        raise UsageError(f"a continuation of {len(cont)} tokens exceeds the model's {max_length}")
    return ctx[-(max_length - len(cont)) :], cont


def rolling_windows(tokens: list[int], lead: list[int], max_length: int) -> list[tuple[list[int], list[int]]]:
    """A text's tokens as (context, continuation) pairs whose scores add up to its loglikelihood from the first
    token: continuations of ``max_length - 1`` tokens, each after ``lead`` and all the text before it (which
    :func:`fit_window` then cuts to the window)."""
    step = max_length - 1
    return [(lead + tokens[:start], tokens[start : start + step]) for start in range(0, len(tokens), step)]
