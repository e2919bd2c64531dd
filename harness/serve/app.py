"""The FastAPI app: /v1/models, /v1/completions and /v1/chat/completions over one engine, the API key, and the
error handlers that give every refusal OpenAI's JSON shape."""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from dataclasses import dataclass, replace

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from harness.backends.base import SamplingParams
from harness.serve.engine import Engine, outcome
from harness.serve.middleware import Guard
from harness.serve.prepare import (
    Prompt,
    asked_tokens,
    chat_prompt,
    check_count,
    check_model,
    parse,
    prepare,
    prompt_list,
    sampling_params,
)
from harness.serve.responses import all_pieces, chat_logprobs, completion_logprobs, usage
from harness.serve.schemas import APIError, ChatRequest, CompletionRequest, Limits, error_body
from harness.serve.streaming import chat_events, completion_events


@dataclass
class Served:
    """What the routes share: the engine (with its thread and queue), the model's name, the request limits."""

    engine: Engine
    name: str
    limits: Limits

    @property
    def lm(self):
        return self.engine.lm


def create_app(
    lm, name: str, api_key: str | None = None, limits: Limits | None = None, batch_window: float = 0.01
) -> FastAPI:
    """The ASGI app serving ``lm`` as model ``name``; ``api_key``: the Bearer token clients must send."""
    served = Served(Engine(lm, batch_window), name, limits or Limits())

    async def lifespan(app: FastAPI):
        served.engine.queue = asyncio.Queue()
        worker = asyncio.create_task(served.engine.run())
        yield
        worker.cancel()
        served.engine.close()

    app = FastAPI(title="harness serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = served.engine
    app.add_middleware(Guard, max_bytes=served.limits.max_body_bytes)
    _error_handlers(app)
    guard = [Depends(_authorizer(api_key))]

    @app.get("/v1/models", dependencies=guard)
    async def models() -> dict:
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "harness"}]}

    @app.post("/v1/completions", dependencies=guard)
    async def completions(request: Request):
        return await complete(served, request)

    @app.post("/v1/chat/completions", dependencies=guard)
    async def chat(request: Request):
        return await chat_complete(served, request)

    return app


def _error_handlers(app: FastAPI) -> None:
    """Refusals in OpenAI's {"error": {...}} shape; what no handler takes is Guard's JSON 500."""

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

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


def _authorizer(api_key: str | None):
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

    return authorized


async def _start_stream(engine: Engine, texts: list[str], params: SamplingParams, request: Request):
    """Queue a streaming job and wait for its first piece: an engine that refuses the request (or a client gone
    before it began) still gets a plain 4xx, since no 200 has been sent yet."""
    job = await engine.submit(texts, params, request, stream=True)
    first = await job.pieces.get()
    if first is None:
        await outcome(job)
    return job, first


async def complete(served: Served, request: Request):
    """/v1/completions: prompts as text or token ids, n each, optional echo and logprobs, streamed or whole."""
    engine, lm, limits = served.engine, served.lm, served.limits
    body = await parse(request, CompletionRequest)
    check_model(body.model, served.name)
    params = sampling_params(body, limits)
    raw = prompt_list(body.prompt)
    check_count(len(raw), params.n, limits)
    if body.echo and body.logprobs is not None and not hasattr(lm, "prompt_logprobs"):
        raise APIError(400, "this engine cannot score prompt tokens (echo + logprobs)", "echo")
    prompts = [await prepare(engine, p, body, params.max_tokens) for p in raw]
    texts = [p.text for p in prompts]
    if body.stream:
        job, first = await _start_stream(engine, texts, params, request)
        echoes = [p.text if body.echo else "" for p in prompts for _ in range(params.n)]
        events = completion_events(
            engine, job, first, served.name, echoes, [p.ids for p in prompts], body.include_usage
        )
        return StreamingResponse(events, media_type="text/event-stream")
    results = await engine.generate(texts, params, request)
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": served.name,
        "choices": await _completion_choices(served, body, params, prompts, results),
        "usage": usage([p.ids for p in prompts], results),
    }


async def _completion_choices(
    served: Served, body: CompletionRequest, params: SamplingParams, prompts: list[Prompt], results
) -> list[dict]:
    engine, lm = served.engine, served.lm
    parts = await engine.call(all_pieces, lm, [c for completions in results for c in completions])
    choices = []
    for p, (prompt, completions) in enumerate(zip(prompts, results)):
        prompt_rows = None
        if body.echo and body.logprobs is not None:
            prompt_rows = await engine.call(lm.prompt_logprobs, prompt.scored)
        echoed = prompt.text if body.echo else ""
        for k, completion in enumerate(completions):
            choice = {
                "index": p * params.n + k,
                "text": echoed + completion.text,
                "logprobs": None,
                "finish_reason": completion.finish_reason,
            }
            if body.logprobs is not None:
                choice["logprobs"] = completion_logprobs(completion, parts[len(choices)], prompt_rows, echoed)
            choices.append(choice)
    return choices


async def chat_complete(served: Served, request: Request):
    """/v1/chat/completions: the messages through the chat template, n answers, streamed or whole."""
    engine, lm, limits = served.engine, served.lm, served.limits
    body = await parse(request, ChatRequest)
    check_model(body.model, served.name)
    params = sampling_params(body, limits, chat=True)
    check_count(1, params.n, limits)
    text = await engine.call(chat_prompt, lm, body.messages)
    prompt = await prepare(engine, text, body, params.max_tokens if asked_tokens(body) else 0)
    if not asked_tokens(body) and prompt.ids is not None:  # no limit asked: what the context has room for
        room = getattr(lm, "max_length", limits.max_tokens) - len(prompt.ids)
        params = replace(params, max_tokens=max(0, min(limits.max_tokens, room)))
    if body.stream:
        job, first = await _start_stream(engine, [prompt.text], params, request)
        events = chat_events(engine, job, first, served.name, [prompt.ids], body.include_usage)
        return StreamingResponse(events, media_type="text/event-stream")
    (completions,) = await engine.generate([prompt.text], params, request)
    parts = await engine.call(all_pieces, lm, completions)
    choices = [
        {
            "index": k,
            "message": {"role": "assistant", "content": c.text},
            "finish_reason": c.finish_reason,
            "logprobs": {"content": chat_logprobs(c, parts[k])} if body.logprobs else None,
        }
        for k, c in enumerate(completions)
    ]
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": served.name,
        "choices": choices,
        "usage": usage([prompt.ids], [completions]),
    }
