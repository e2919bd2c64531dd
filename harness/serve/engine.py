"""The one thread that touches the engine, and the queue in front of it.

Engines are not thread-safe, so every engine call runs on one worker thread. Requests that arrive together with
the same sampling parameters are gathered (``batch_window``) into one ``lm.generate`` call. On an engine that
streams (``lm.streams``: hf, scratch) that call reports each decode step's tokens: a streaming request gets its
text as it is generated, and a request whose client went away is stopped at the next step, so an abandoned long
request does not hold the engine. Other engines (vLLM, openai) answer when the whole call is done.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness.backends.base import Completion, OnStep, SamplingParams, Token
from harness.errors import UsageError
from harness.serve.schemas import APIError
from harness.serve.text import TextStream

if TYPE_CHECKING:
    from fastapi import Request


@dataclass
class Job:
    """One request's prompts on their way through the engine. ``left``: its client went away (read by the engine
    thread between decode steps); ``pieces``: for a streaming request, (choice, text) as generated, then None."""

    prompts: list[str]
    params: SamplingParams
    request: Request | None
    future: asyncio.Future
    pieces: asyncio.Queue | None = None
    texts: list[TextStream] = field(default_factory=list)  # per choice (prompt * n + sample), when streaming
    left: bool = False
    watcher: asyncio.Task | None = None


class Engine:
    """The engine thread and its queue; ``poll``: how often a waiting request checks that its client is there."""

    def __init__(self, lm, batch_window: float = 0.01, poll: float = 0.1):
        self.lm = lm
        self.batch_window = batch_window
        self.poll = poll
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="engine")
        self.queue: asyncio.Queue[Job] | None = None
        self.calls = 0  # lm.generate calls (the benchmark and the tests read it)
        self.streams = bool(getattr(lm, "streams", False)) and hasattr(lm, "decode")
        tokenizer = getattr(lm, "tokenizer", None)
        self.vocab_size = len(tokenizer) if tokenizer is not None else None  # token ids a prompt may hold

    async def call(self, function, *args):
        """Run ``function(*args)`` on the engine thread (scoring, tokenizing with the engine's state)."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)

    async def submit(self, prompts: list[str], params: SamplingParams, request: Request | None, stream: bool) -> Job:
        """Queue a job; with ``stream`` its text arrives on ``job.pieces`` (as generated where the engine streams)."""
        job = Job(prompts, params, request, asyncio.get_running_loop().create_future())
        if stream:
            job.pieces = asyncio.Queue()
            if self.streams:
                hold = max(map(len, params.stop), default=1) - 1  # a stop string may be starting: not sent yet
                job.texts = [TextStream(self.lm.decode, params.stop, hold) for _ in range(len(prompts) * params.n)]
            job.future.add_done_callback(lambda _: job.pieces.put_nowait(None))
        if request is not None:
            job.watcher = asyncio.create_task(self._watch(job))
        await self.queue.put(job)
        return job

    async def generate(
        self, prompts: list[str], params: SamplingParams, request: Request | None
    ) -> list[list[Completion]]:
        """``params.n`` completions per prompt, once the engine is done with them; engine errors as APIErrors."""
        return await outcome(await self.submit(prompts, params, request, stream=False))

    async def _watch(self, job: Job) -> None:
        """Until the job is answered: mark it ``left`` as soon as its client disconnects."""
        while not job.future.done():
            if await job.request.is_disconnected():
                job.left = True
                return
            await asyncio.sleep(self.poll)

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
        live = [job for job in group if not job.future.done() and not job.left and not await _left(job.request)]
        for job in group:
            if job not in live and not job.future.done():
                job.future.cancel()
        if not live:
            return
        prompts = [p for job in live for p in job.prompts]
        self.calls += 1
        try:
            if self.streams:
                reporter = self._reporter(live, asyncio.get_running_loop())
                results = await self.call(self.lm.generate, prompts, params, reporter)
            else:
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

    def _reporter(self, live: list[Job], loop: asyncio.AbstractEventLoop) -> OnStep:
        """The engine's ``on_step`` for one call (run on the engine thread): each new token's text goes to its
        streaming job, and the prompts of jobs whose client left are named, so the engine stops them."""
        owners = [(job, p) for job in live for p in range(len(job.prompts))]  # the call's prompt -> (job, its prompt)
        n = live[0].params.n

        def on_step(tokens: list[Token]) -> list[int]:
            sent = []
            for token in tokens:
                job, p = owners[token.prompt]
                if job.texts and not job.left:
                    choice = p * n + token.sample
                    piece = job.texts[choice].add(token.token_id)
                    if piece:
                        sent.append((job.pieces, (choice, piece)))
            if sent:
                loop.call_soon_threadsafe(_deliver, sent)
            if not any(job.left for job in live):
                return []
            return [g for g, (job, _) in enumerate(owners) if job.left]

        return on_step

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _deliver(sent: list[tuple[asyncio.Queue, tuple[int, str]]]) -> None:
    for queue, item in sent:
        queue.put_nowait(item)


async def _left(request: Request | None) -> bool:
    return request is not None and await request.is_disconnected()


async def outcome(job: Job) -> list[list[Completion]]:
    """The job's completions; the engine's refusal (a UsageError) is a 400, a departed client a 499."""
    try:
        return await job.future
    except UsageError as exc:
        raise APIError(400, str(exc)) from None
    except asyncio.CancelledError:
        raise APIError(499, "the client closed the request") from None
