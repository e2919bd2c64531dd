"""Request -> engine: the body parsed and checked, the engine's SamplingParams, each prompt tokenized and fitted to
the context. Every defect found here is an APIError (a 4xx), never an exception from deeper down."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ValidationError

from harness.backends.base import SamplingParams
from harness.serve.schemas import APIError, Limits, Message, Sampling

if TYPE_CHECKING:
    from fastapi import Request

    from harness.serve.engine import Engine


async def parse(request: Request, model: type[BaseModel]):
    """The body as ``model``, whatever its Content-Type (curl -d sends form-encoded); any defect is a 400."""
    raw = await request.body()
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise APIError(400, "the body is not valid UTF-8") from None
    except (ValueError, RecursionError):
        raise APIError(400, "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise APIError(400, f"the body must be a JSON object, not {type(data).__name__}")
    check_unicode(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        raise APIError(400, f"{where or 'body'}: {first.get('msg', 'invalid')}", where or None) from None
    except RecursionError:
        raise APIError(400, "the body is nested too deeply") from None


def check_unicode(data) -> None:
    """JSON may escape a lone UTF-16 surrogate (``"\\ud800"``), which is no Unicode text: tokenizers fail on it deep
    inside, so it is refused here, wherever in the body it is."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = ord(exc.object[exc.start])
        raise APIError(
            400, f"the body holds a lone surrogate (\\u{bad:04x}), which is not valid Unicode: send well-formed text"
        ) from None
    except RecursionError:
        raise APIError(400, "the body is nested too deeply") from None


def check_model(asked: str, name: str) -> None:
    if asked != name:
        raise APIError(
            404,
            f"model '{asked}' does not exist; this server serves '{name}'",
            "model",
            kind="not_found_error",
            code="model_not_found",
        )


def asked_tokens(body: Sampling) -> bool:
    return body.max_completion_tokens is not None or body.max_tokens is not None


def sampling_params(body: Sampling, limits: Limits, chat: bool = False) -> SamplingParams:
    """The engine's SamplingParams for a request; max_completion_tokens wins over max_tokens (OpenAI's rule)."""
    max_tokens = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
    if max_tokens is None:
        max_tokens = limits.max_tokens if chat else 16  # OpenAI's completions default
    if max_tokens > limits.max_tokens:
        raise APIError(400, f"max_tokens={max_tokens} is over this server's limit of {limits.max_tokens}", "max_tokens")
    if body.n > limits.max_n:
        raise APIError(400, f"n={body.n} is over this server's limit of {limits.max_n}", "n")
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    if len(stop) > limits.max_stop:
        raise APIError(400, f"{len(stop)} stop strings; at most {limits.max_stop}", "stop")
    return SamplingParams(
        n=body.n,
        temperature=body.temperature,
        top_p=body.top_p,
        top_k=max(0, body.top_k),
        max_tokens=max_tokens,
        stop=tuple(s for s in stop if s),
        seed=body.seed,
        ignore_eos=body.ignore_eos,
    )


def check_count(prompts: int, n: int, limits: Limits) -> None:
    if prompts > limits.max_prompts:
        raise APIError(400, f"{prompts} prompts in one request; at most {limits.max_prompts}", "prompt")
    if prompts * n > limits.max_choices:
        raise APIError(400, f"{prompts} prompts x n={n} is over this server's limit of {limits.max_choices}", "n")


def prompt_list(prompt) -> list[str | list[int]]:
    """A string, a list of strings, token ids, or a list of token-id lists -> one entry per prompt."""
    if isinstance(prompt, str):
        prompts = [prompt]
    elif prompt and all(isinstance(x, int) for x in prompt):
        prompts = [list(prompt)]
    else:
        prompts = list(prompt)
    if not prompts:
        raise APIError(400, "prompt is empty: send a string, token ids, or a list of either", "prompt")
    return prompts


@dataclass
class Prompt:
    """One prompt as the engine sees it: its text (what ``lm.generate`` takes) and its token ids (None when the
    engine cannot tokenize); ``scored`` is what prompt logprobs are computed on (the ids when the client sent ids)."""

    text: str
    ids: list[int] | None
    scored: str | list[int]


async def prepare(engine: Engine, prompt: str | list[int], body: Sampling, max_tokens: int) -> Prompt:
    """Tokenize and check one prompt: one that does not fit the context with ``max_tokens`` is a 400 unless the
    client asked for truncation (truncate_prompt_tokens: keep the last K tokens)."""
    lm = engine.lm
    if isinstance(prompt, list):
        vocab = engine.vocab_size
        if not prompt or any(t < 0 or (vocab is not None and t >= vocab) for t in prompt):
            raise APIError(400, f"token ids must be in [0, {vocab}) and a prompt must have at least one", "prompt")
        if not hasattr(lm, "decode"):
            raise APIError(400, "this engine takes text prompts only", "prompt")
        ids = list(prompt)
    elif hasattr(lm, "encode"):
        ids = await engine.call(lm.encode, prompt)
    else:
        return Prompt(prompt, None, prompt)
    cut = body.truncate_prompt_tokens is not None and len(ids) > body.truncate_prompt_tokens
    if cut:
        ids = ids[-body.truncate_prompt_tokens :]
    context = getattr(lm, "max_length", None)
    if context is not None and len(ids) + max_tokens > context:
        raise APIError(
            400,
            f"the prompt has {len(ids)} tokens and max_tokens is {max_tokens}, over the model's "
            f"context of {context}; shorten it, lower max_tokens, or send truncate_prompt_tokens",
            "prompt",
            code="context_length_exceeded",
        )
    if isinstance(prompt, str) and not cut:
        return Prompt(prompt, ids, prompt)
    tokenizer = getattr(lm, "tokenizer", None)  # special tokens kept: the engine re-encodes this text
    text = await engine.call(tokenizer.decode if tokenizer is not None else lm.decode, ids)
    return Prompt(text, ids, ids if isinstance(prompt, list) else text)


def chat_prompt(lm, messages: list[Message]) -> str:
    """The conversation through the model's chat template (or a plain 'role: content' transcript without one)."""
    turns = [
        {
            "role": m.role,
            "content": m.content
            if isinstance(m.content, str) or m.content is None
            else "".join(part.text for part in m.content),
        }
        for m in messages
    ]
    for turn in turns:
        turn["content"] = turn["content"] or ""
    tokenizer = getattr(lm, "tokenizer", None)
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        try:
            return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # noqa: BLE001 - jinja's TemplateError and what templates raise themselves
            raise APIError(400, f"the chat template refused these messages: {exc}", "messages") from None
    return "\n".join(f"{t['role']}: {t['content']}" for t in turns) + "\nassistant:"
