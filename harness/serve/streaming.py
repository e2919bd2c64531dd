"""``stream: true``: server-sent events in OpenAI's chunk format, sent as the engine produces tokens.

Text is decoded incrementally (text.py's TextStream, on the engine thread: a fast tokenizer must not be shared
across threads); text that may be the start of a stop string is held back until the next tokens settle it, and what the
finished completion adds (the held-back tail) is sent last, so the streamed pieces join to the completion's text.
An engine that cannot stream gets today's behaviour: its finished completion is sent token by token.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from harness.errors import UsageError
from harness.serve.engine import Engine, Job
from harness.serve.responses import all_pieces, usage
from harness.serve.schemas import APIError, error_body

DONE = "data: [DONE]\n\n"


def sse(payload: Any) -> str:
    return f"data: {json.dumps(payload)}\n\n"


async def texts(engine: Engine, job: Job, first) -> AsyncIterator[tuple[int, str]]:
    """(choice, text) as generated, ``first`` (already taken off the queue) first; then what the finished
    completions add. An engine that cannot stream gives each finished completion token by token."""
    item = first
    while item is not None:
        yield item
        item = await job.pieces.get()
    flat = [c for completions in job.future.result() for c in completions]
    if not job.texts:
        for choice, pieces in enumerate(await engine.call(all_pieces, engine.lm, flat)):
            for piece in pieces:
                yield choice, piece
        return
    for choice, completion in enumerate(flat):
        rest = job.texts[choice].rest(completion.text)
        if rest:
            yield choice, rest


def _failed(exc: Exception) -> str:
    """A stream that fails after its 200 went out ends with an error event in OpenAI's shape (no traceback)."""
    if isinstance(exc, APIError):
        return sse(exc.body())
    if isinstance(exc, UsageError):
        return sse(error_body(str(exc), "invalid_request_error"))
    return sse(error_body(f"generation failed: {type(exc).__name__}: {exc}", "server_error"))


async def completion_events(
    engine: Engine, job: Job, first, name: str, echoes: list[str], prompt_ids: list, include_usage: bool
) -> AsyncIterator[str]:
    """/v1/completions chunks: each choice's echoed prompt, its text as generated, its finish reason, usage."""
    ident, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(choices: list[dict], **extra) -> str:
        return sse(
            {"id": ident, "object": "text_completion", "created": created, "model": name, "choices": choices, **extra}
        )

    def choice(k: int, text: str, finish: str | None = None) -> dict:
        return {"index": k, "text": text, "logprobs": None, "finish_reason": finish}

    try:
        for k, echo in enumerate(echoes):
            if echo:
                yield chunk([choice(k, echo)])
        async for k, piece in texts(engine, job, first):
            yield chunk([choice(k, piece)])
        results = job.future.result()
        for k, completion in enumerate(c for completions in results for c in completions):
            yield chunk([choice(k, "", completion.finish_reason)])
        if include_usage:
            yield chunk([], usage=usage(prompt_ids, results))
    except Exception as exc:  # noqa: BLE001 - the 200 is sent: the client learns of it in the stream
        yield _failed(exc)
    finally:
        job.left = job.left or not job.future.done()  # the client went away mid-stream: stop its generation
    yield DONE


async def chat_events(
    engine: Engine, job: Job, first, name: str, prompt_ids: list, include_usage: bool
) -> AsyncIterator[str]:
    """/v1/chat/completions chunks: the assistant role, content deltas as generated, finish reasons, usage."""
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(choices: list[dict], **extra) -> str:
        return sse(
            {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": name,
                "choices": choices,
                **extra,
            }
        )

    try:
        for k in range(job.params.n):
            yield chunk([{"index": k, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        async for k, piece in texts(engine, job, first):
            yield chunk([{"index": k, "delta": {"content": piece}, "finish_reason": None}])
        results = job.future.result()
        for k, completion in enumerate(results[0]):
            yield chunk([{"index": k, "delta": {}, "finish_reason": completion.finish_reason}])
        if include_usage:
            yield chunk([], usage=usage(prompt_ids, results))
    except Exception as exc:  # noqa: BLE001 - the 200 is sent: the client learns of it in the stream
        yield _failed(exc)
    finally:
        job.left = job.left or not job.future.done()
    yield DONE
