"""`harness serve`: any backend behind an OpenAI-compatible HTTP API (/v1/models, /v1/completions,
/v1/chat/completions), so tools that speak OpenAI (the `openai` package, lm-evaluation-harness's local-completions
and local-chat-completions) can use harness engines.

Built on FastAPI + uvicorn with pydantic request models (as vLLM's server is): the stack parses and validates
every request, so a malformed one gets a 4xx JSON error in OpenAI's shape instead of a dropped connection.
The engine is not thread-safe, so every engine call runs on one worker thread. Requests that arrive together with
the same sampling parameters are gathered (``batch_window``) into one ``lm.generate`` call, and a request's
prompts go to the engine as one batch. The engines have no incremental decoding API, so ``stream: true`` sends
the finished completion token by token as server-sent events (the wire format clients expect, not lower latency).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from harness.backends.base import Completion, SamplingParams
from harness.errors import UsageError

API_KEY_ENV = "HARNESS_API_KEY"


@dataclass
class Limits:
    """What one request may ask for; beyond these it gets a 4xx instead of tying up the engine."""

    max_body_bytes: int = 4 * 1024 * 1024  # request body; a larger Content-Length is refused before reading
    max_n: int = 16  # completions per prompt
    max_tokens: int = 2048  # tokens generated per completion
    max_prompts: int = 256  # prompts in one /v1/completions request
    max_choices: int = 512  # prompts x n in one request
    max_stop: int = 16  # stop strings


class APIError(Exception):
    """A request the client must change; rendered as OpenAI's {"error": {...}} with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        kind: str = "invalid_request_error",
        code: str | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.kind, self.code = status, message, param, kind, code


def error_body(message: str, kind: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


# request models ------------------------------------------------------------------------------------------------------
class StreamOptions(BaseModel):
    include_usage: bool = False


class Sampling(BaseModel):
    """The sampling fields completions and chat share; unknown fields (user, presence_penalty, ...) are ignored."""

    model_config = ConfigDict(extra="ignore", ser_json_inf_nan="null", allow_inf_nan=False)

    model: str
    n: int = Field(1, ge=1)
    max_tokens: int | None = Field(None, ge=0)
    max_completion_tokens: int | None = Field(None, ge=0)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=-1)  # vLLM's extension; -1 or 0: no filter
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=0, lt=2**63)
    ignore_eos: bool = False
    stream: bool = False
    stream_options: StreamOptions | None = None
    truncate_prompt_tokens: int | None = Field(None, ge=1)  # vLLM's: keep the last K prompt tokens


class CompletionRequest(Sampling):
    prompt: str | list[str] | list[int] | list[list[int]]
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=20)


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None


class ChatRequest(Sampling):
    messages: list[Message] = Field(min_length=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)


# the batching queue ------------------------------------------------------------------------------------------------
@dataclass
class Job:
    prompts: list[str]
    params: SamplingParams
    request: Request | None
    future: asyncio.Future = field(default=None)


class Engine:
    """The one thread that touches the engine, and the queue in front of it that gathers concurrent requests."""

    def __init__(self, lm, batch_window: float = 0.01):
        self.lm = lm
        self.batch_window = batch_window
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="engine")
        self.queue: asyncio.Queue[Job] | None = None
        self.calls = 0  # lm.generate calls (the benchmark and the tests read it)
        tokenizer = getattr(lm, "tokenizer", None)
        self.vocab_size = len(tokenizer) if tokenizer is not None else None  # token ids a prompt may hold

    async def call(self, function, *args):
        """Run ``function(*args)`` on the engine thread (scoring, tokenizing with the engine's state)."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)

    async def generate(
        self, prompts: list[str], params: SamplingParams, request: Request | None
    ) -> list[list[Completion]]:
        job = Job(prompts, params, request, asyncio.get_running_loop().create_future())
        await self.queue.put(job)
        return await job.future

    async def run(self) -> None:
        """Forever: take what is queued, wait ``batch_window`` for more, send each group of equal params as one
        call. A job whose client left while it was queued is dropped without reaching the engine."""
        while True:
            jobs = [await self.queue.get()]
            await asyncio.sleep(self.batch_window)
            while not self.queue.empty():
                jobs.append(self.queue.get_nowait())
            groups: dict[SamplingParams, list[Job]] = {}
            for job in jobs:
                groups.setdefault(job.params, []).append(job)
            for params, group in groups.items():
                try:
                    await self._run_group(params, group)
                except Exception as exc:  # noqa: BLE001 - never leave a request waiting on a dead queue
                    for job in group:
                        if not job.future.done():
                            job.future.set_exception(exc)

    async def _run_group(self, params: SamplingParams, group: list[Job]) -> None:
        live = [job for job in group if not job.future.done() and not await _left(job.request)]
        for job in group:
            if job not in live and not job.future.done():
                job.future.cancel()
        if not live:
            return
        prompts = [p for job in live for p in job.prompts]
        self.calls += 1
        try:
            results = await self.call(self.lm.generate, prompts, params)
        except Exception as exc:  # noqa: BLE001 - each waiting request gets the engine's error
            for job in live:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        start = 0
        for job in live:
            if not job.future.done():
                job.future.set_result(results[start : start + len(job.prompts)])
            start += len(job.prompts)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


async def _left(request: Request | None) -> bool:
    return request is not None and await request.is_disconnected()


# the app -----------------------------------------------------------------------------------------------------------
def create_app(
    lm, name: str, api_key: str | None = None, limits: Limits | None = None, batch_window: float = 0.01
) -> FastAPI:
    """The ASGI app serving ``lm`` as model ``name``; ``api_key``: the Bearer token clients must send."""
    limits = limits or Limits()
    engine = Engine(lm, batch_window)

    async def lifespan(app: FastAPI):
        engine.queue = asyncio.Queue()
        worker = asyncio.create_task(engine.run())
        yield
        worker.cancel()
        engine.close()

    app = FastAPI(title="harness serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(error_body(exc.message, exc.kind, exc.param, exc.code), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(x) for x in first.get("loc", ()) if x != "body"]
        message = f"{'.'.join(loc) or 'body'}: {first.get('msg', 'invalid request')}"
        return JSONResponse(error_body(message, "invalid_request_error", ".".join(loc) or None), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(str(exc.detail), kind), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body(f"{type(exc).__name__}: {exc}", "server_error"), status_code=500)

    async def authorized(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
            raise APIError(
                401,
                "missing or wrong API key: send it as 'Authorization: Bearer KEY'",
                kind="authentication_error",
                code="invalid_api_key",
            )

    guard = [Depends(authorized)]

    @app.get("/v1/models", dependencies=guard)
    async def models() -> dict:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "harness"}]}

    @app.post("/v1/completions", dependencies=guard)
    async def completions(request: Request):
        body = await _parse(request, CompletionRequest)
        _check_model(body.model, name)
        params = _params(body, limits)
        raw = _prompt_list(body.prompt)
        _check_count(len(raw), params.n, limits)
        if body.echo and body.logprobs is not None and not hasattr(lm, "prompt_logprobs"):
            raise APIError(400, "this engine cannot score prompt tokens (echo + logprobs)", "echo")
        prompts = [await _prepare(engine, p, body, params.max_tokens) for p in raw]
        results = await _generate(engine, [p.text for p in prompts], params, request)
        pieces = await engine.call(_all_pieces, lm, [c for completions_ in results for c in completions_])
        choices = []
        for p, (prompt, completions_) in enumerate(zip(prompts, results)):
            prompt_rows = None
            if body.echo and body.logprobs is not None:
                prompt_rows = await engine.call(lm.prompt_logprobs, prompt.scored)
            for k, completion in enumerate(completions_):
                choice = {
                    "index": p * params.n + k,
                    "text": (prompt.text if body.echo else "") + completion.text,
                    "logprobs": None,
                    "finish_reason": completion.finish_reason,
                }
                if body.logprobs is not None:
                    choice["logprobs"] = _completion_logprobs(
                        completion, pieces[len(choices)], prompt_rows, prompt.text if body.echo else ""
                    )
                choices.append(choice)
        usage = _usage([p.ids for p in prompts], results)
        if body.stream:
            return _stream_completions(name, choices, results, pieces, usage, body)
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": name,
            "choices": choices,
            "usage": usage,
        }

    @app.post("/v1/chat/completions", dependencies=guard)
    async def chat(request: Request):
        body = await _parse(request, ChatRequest)
        _check_model(body.model, name)
        params = _params(body, limits, chat=True)
        _check_count(1, params.n, limits)
        text = await engine.call(_chat_prompt, lm, body.messages)
        prompt = await _prepare(engine, text, body, params.max_tokens if _asked_tokens(body) else 0)
        if not _asked_tokens(body) and prompt.ids is not None:  # no limit asked: what the context has room for
            room = getattr(lm, "max_length", limits.max_tokens) - len(prompt.ids)
            params = replace(params, max_tokens=max(0, min(limits.max_tokens, room)))
        (completions_,) = await _generate(engine, [prompt.text], params, request)
        pieces = await engine.call(_all_pieces, lm, completions_)
        choices = [
            {
                "index": k,
                "message": {"role": "assistant", "content": c.text},
                "finish_reason": c.finish_reason,
                "logprobs": {"content": _chat_logprobs(c, pieces[k])} if body.logprobs else None,
            }
            for k, c in enumerate(completions_)
        ]
        usage = _usage([prompt.ids], [completions_])
        if body.stream:
            return _stream_chat(name, choices, pieces, usage, body)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": name,
            "choices": choices,
            "usage": usage,
        }

    return app


class BodyLimit:
    """ASGI middleware: a body over ``max_bytes`` is a 413, refused from its Content-Length before any byte is
    read, and cut off while reading when the client sends it chunked."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._refuse(
                send, "body larger than the server's limit" if length.isdigit() else "Content-Length is not a number"
            )
        seen = 0
        started = False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge()
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await self._refuse(send, "body larger than the server's limit")

    async def _refuse(self, send, message: str) -> None:
        status = 413 if "larger" in message else 400
        body = json.dumps(error_body(f"{message} ({self.max_bytes} bytes)", "invalid_request_error")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


# request -> engine ---------------------------------------------------------------------------------------------------
async def _parse(request: Request, model: type[BaseModel]):
    """The body as ``model``, whatever its Content-Type (curl -d sends form-encoded); any defect is a 400."""
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise APIError(400, "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise APIError(400, f"the body must be a JSON object, not {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        raise APIError(400, f"{where or 'body'}: {first.get('msg', 'invalid')}", where or None) from None
    except RecursionError:
        raise APIError(400, "the body is nested too deeply") from None


def _check_model(asked: str, name: str) -> None:
    if asked != name:
        raise APIError(
            404,
            f"model '{asked}' does not exist; this server serves '{name}'",
            "model",
            kind="not_found_error",
            code="model_not_found",
        )


def _asked_tokens(body: Sampling) -> bool:
    return body.max_completion_tokens is not None or body.max_tokens is not None


def _params(body: Sampling, limits: Limits, chat: bool = False) -> SamplingParams:
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


def _check_count(prompts: int, n: int, limits: Limits) -> None:
    if prompts > limits.max_prompts:
        raise APIError(400, f"{prompts} prompts in one request; at most {limits.max_prompts}", "prompt")
    if prompts * n > limits.max_choices:
        raise APIError(400, f"{prompts} prompts x n={n} is over this server's limit of {limits.max_choices}", "n")


def _prompt_list(prompt) -> list[str | list[int]]:
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


async def _prepare(engine: Engine, prompt: str | list[int], body: Sampling, max_tokens: int) -> Prompt:
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


async def _generate(engine: Engine, texts: list[str], params: SamplingParams, request: Request):
    try:
        return await engine.generate(texts, params, request)
    except UsageError as exc:
        raise APIError(400, str(exc)) from None
    except asyncio.CancelledError:
        raise APIError(499, "the client closed the request") from None


def _chat_prompt(lm, messages: list[Message]) -> str:
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


# engine -> response --------------------------------------------------------------------------------------------------
def _pieces(lm, completion: Completion) -> list[str]:
    """The completion's text split per generated token (what streaming and logprobs show); joined, the text."""
    text = completion.text
    if not completion.token_ids or not hasattr(lm, "decode"):
        return [text] if text else []
    pieces, previous = [], ""
    for k in range(len(completion.token_ids)):
        current = lm.decode(completion.token_ids[: k + 1])[: len(text)]
        if not current.startswith(previous):
            return [text]
        pieces.append(current[len(previous) :])
        previous = current
    if previous != text:
        pieces.append(text[len(previous) :])
    return pieces


def _all_pieces(lm, completions: list[Completion]) -> list[list[str]]:
    """Each completion's pieces; run on the engine thread (a fast tokenizer must not be shared across threads)."""
    return [_pieces(lm, c) for c in completions]


def _completion_logprobs(completion: Completion, pieces: list[str], prompt_rows, echoed: str) -> dict:
    """OpenAI's completions logprobs: the prompt's rows when echoed (first token: None), then the generated
    tokens'. top_logprobs holds the chosen token (the engines return no alternatives for generated tokens)."""
    rows = list(prompt_rows or [])
    offset = len(echoed)
    for j, logprob in enumerate(completion.logprobs):
        piece = pieces[j] if j < len(pieces) else ""
        rows.append((piece, offset, logprob, {piece: logprob}))
        offset += len(piece)
    return {
        "tokens": [r[0] for r in rows],
        "text_offset": [r[1] for r in rows],
        "token_logprobs": [r[2] for r in rows],
        "top_logprobs": [r[3] or None for r in rows],
    }


def _chat_logprobs(completion: Completion, pieces: list[str]) -> list[dict]:
    return [
        {
            "token": piece,
            "logprob": logprob,
            "bytes": list(piece.encode()),
            "top_logprobs": [{"token": piece, "logprob": logprob, "bytes": list(piece.encode())}],
        }
        for piece, logprob in zip(pieces + [""] * len(completion.logprobs), completion.logprobs)
    ]


def _usage(encoded: list[list[int] | None], results: list[list[Completion]]) -> dict:
    prompt = sum(len(ids or []) for ids in encoded)
    completion = sum(len(c.token_ids) or len(c.logprobs) for completions in results for c in completions)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _sse(payload: Any) -> str:
    return f"data: {json.dumps(payload)}\n\n"


def _stream_completions(
    name: str, choices: list[dict], results, pieces: list[list[str]], usage: dict, body: CompletionRequest
):
    ident, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
    flat = [c for completions in results for c in completions]

    def events():
        for choice, completion, parts in zip(choices, flat, pieces):
            prefix = choice["text"][: len(choice["text"]) - len(completion.text)]
            for piece in ([prefix] if prefix else []) + parts:
                chunk = {"index": choice["index"], "text": piece, "logprobs": None, "finish_reason": None}
                yield _sse(
                    {"id": ident, "object": "text_completion", "created": created, "model": name, "choices": [chunk]}
                )
            yield _sse(
                {
                    "id": ident,
                    "object": "text_completion",
                    "created": created,
                    "model": name,
                    "choices": [
                        {
                            "index": choice["index"],
                            "text": "",
                            "logprobs": None,
                            "finish_reason": choice["finish_reason"],
                        }
                    ],
                }
            )
        if body.stream_options and body.stream_options.include_usage:
            yield _sse(
                {
                    "id": ident,
                    "object": "text_completion",
                    "created": created,
                    "model": name,
                    "choices": [],
                    "usage": usage,
                }
            )
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


def _stream_chat(name: str, choices: list[dict], pieces: list[list[str]], usage: dict, body: ChatRequest):
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(choices_: list[dict], **extra) -> str:
        return _sse(
            {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": name,
                "choices": choices_,
                **extra,
            }
        )

    def events():
        for choice, parts in zip(choices, pieces):
            k = choice["index"]
            yield chunk([{"index": k, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
            for piece in parts:
                yield chunk([{"index": k, "delta": {"content": piece}, "finish_reason": None}])
            yield chunk([{"index": k, "delta": {}, "finish_reason": choice["finish_reason"]}])
        if body.stream_options and body.stream_options.include_usage:
            yield chunk([], usage=usage)
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


# the command -------------------------------------------------------------------------------------------------------
def serve(lm, name: str, host: str, port: int, api_key: str | None = None, limits: Limits | None = None) -> None:
    """Serve until Ctrl-C. The socket is bound before the 'serving ... at URL' line (port 0: a free port)."""
    import uvicorn

    api_key = api_key or os.environ.get(API_KEY_ENV) or None
    app = create_app(lm, name, api_key, limits)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port") from None
    sock.listen(128)
    shown = f"[{host}]" if ":" in host else host
    print(
        f"serving {name} at http://{shown}:{sock.getsockname()[1]}/v1"
        f"{' (API key required)' if api_key else ''} (Ctrl-C to stop)",
        flush=True,
    )
    config = uvicorn.Config(app, log_level="warning", timeout_keep_alive=30, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
