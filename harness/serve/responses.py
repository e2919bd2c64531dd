"""Engine -> response: a completion split into its tokens' text (for logprobs), the logprobs in OpenAI's two
shapes (completions and chat), and usage."""

from __future__ import annotations

from harness.backends.base import Completion


def pieces(lm, completion: Completion) -> list[str]:
    """The completion's text split per generated token (what logprobs show); joined, the text."""
    text = completion.text
    if not completion.token_ids or not hasattr(lm, "decode"):
        return [text] if text else []
    parts, previous = [], ""
    for k in range(len(completion.token_ids)):
        current = lm.decode(completion.token_ids[: k + 1])[: len(text)]
        if not current.startswith(previous):
            return [text]
        parts.append(current[len(previous) :])
        previous = current
    if previous != text:
        parts.append(text[len(previous) :])
    return parts


def all_pieces(lm, completions: list[Completion]) -> list[list[str]]:
    """Each completion's pieces; run on the engine thread (a fast tokenizer must not be shared across threads)."""
    return [pieces(lm, c) for c in completions]


def completion_logprobs(completion: Completion, parts: list[str], prompt_rows, echoed: str) -> dict:
    """OpenAI's completions logprobs: the prompt's rows when echoed (first token: None), then the generated
    tokens'. top_logprobs holds the chosen token (the engines return no alternatives for generated tokens)."""
    rows = list(prompt_rows or [])
    offset = len(echoed)
    for j, logprob in enumerate(completion.logprobs):
        piece = parts[j] if j < len(parts) else ""
        rows.append((piece, offset, logprob, {piece: logprob}))
        offset += len(piece)
    return {
        "tokens": [r[0] for r in rows],
        "text_offset": [r[1] for r in rows],
        "token_logprobs": [r[2] for r in rows],
        "top_logprobs": [r[3] or None for r in rows],
    }


def chat_logprobs(completion: Completion, parts: list[str]) -> list[dict]:
    return [
        {
            "token": piece,
            "logprob": logprob,
            "bytes": list(piece.encode()),
            "top_logprobs": [{"token": piece, "logprob": logprob, "bytes": list(piece.encode())}],
        }
        for piece, logprob in zip(parts + [""] * len(completion.logprobs), completion.logprobs)
    ]


def usage(encoded: list[list[int] | None], results: list[list[Completion]]) -> dict:
    prompt = sum(len(ids or []) for ids in encoded)
    completion = sum(len(c.token_ids) or len(c.logprobs) for completions in results for c in completions)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
