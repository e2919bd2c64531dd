"""Any OpenAI-compatible server over HTTP (vLLM's server, `harness serve`, hosted APIs).

Requests go out concurrently (a bounded thread pool) over one httpx client with connect and read timeouts. Each
is retried by tenacity with exponential backoff and jitter on 429, 5xx, timeouts and dropped connections, waiting
what the server's ``Retry-After`` asks when it sends one, within a total deadline per request (2 x ``timeout``),
so a hung server fails in bounded time with one line. A refused connection fails at once ("is the server running
at URL?"). A request that fails for good does not discard the others: the finished ones come back in a
``PartialResults`` (the response cache stores them) and the failing ones are named by index with the server's
message. The API key is read from the environment (OPENAI_API_KEY, or the variable named by ``api_key_env``) and is
never written to a log, a fingerprint or a run record.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from concurrent.futures import CancelledError, ThreadPoolExecutor, as_completed
from email.utils import parsedate_to_datetime

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, stop_before_delay, wait_exponential_jitter

from harness.backends.base import LM, Completion, PartialResults, SamplingParams
from harness.errors import UsageError

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
CONNECT_TIMEOUT = 10.0  # seconds to open a connection (capped by ``timeout``): a live server accepts at once
MAX_RETRY_AFTER = 60.0  # longest Retry-After honoured; the deadline caps it too


class RetryableError(Exception):
    """A failure worth trying again (rate limit, server error, dropped connection, timeout)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class ServerGaveUp(RuntimeError):
    """A request that kept failing until its retries or its deadline ran out (the server is down or hung)."""


class RequestRejected(RuntimeError):
    """The server refused this one request (a 4xx other than auth): the others may still succeed."""


class OpenAILM(LM):
    """The request API over /v1/completions and /v1/chat/completions."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str = "",
        chat: bool = False,
        concurrency: int = 8,
        max_retries: int = 6,
        timeout: float = 120.0,
        backoff: float = 0.5,
        api_key_env: str = "OPENAI_API_KEY",
    ):
        if not base_url.startswith(("http://", "https://")):
            raise UsageError(f"openai:{base_url}: give the server's URL, e.g. --model openai:http://127.0.0.1:8000/v1")
        self.base_url = base_url.rstrip("/")
        self.chat = chat
        self.concurrency = max(1, concurrency)
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff = backoff
        self.deadline = 2 * timeout  # total seconds per request, retries included
        api_key = os.environ.get(api_key_env, "")
        self._client = httpx.Client(
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
            limits=httpx.Limits(max_connections=self.concurrency),
        )
        self.model = model or self._only_model()
        identity = f"{self.base_url}|{self.model}|chat={chat}"
        self.fingerprint = "openai:" + hashlib.sha256(identity.encode()).hexdigest()[:16]

    @classmethod
    def from_spec(cls, target: str, **model_args) -> OpenAILM:
        cls.check_args(model_args)  # before any connection
        return cls(target, **model_args)

    # transport ---------------------------------------------------------------------------------------------------
    def _request(self, path: str, body: dict | None = None) -> dict:
        """One HTTP call, retried on transient failures within ``self.deadline`` seconds."""
        start = time.monotonic()
        backoff = wait_exponential_jitter(multiplier=self.backoff, max=30.0, jitter=self.backoff)

        def wait(state) -> float:  # the server's Retry-After wins over our backoff
            retry_after = getattr(state.outcome.exception(), "retry_after", None)
            return min(retry_after, MAX_RETRY_AFTER) if retry_after is not None else backoff(state)

        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1) | stop_before_delay(self.deadline),
            wait=wait,
            retry=retry_if_exception_type(RetryableError),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._send(path, body, self.deadline - (time.monotonic() - start))
        except RetryableError as exc:
            tries = retrying.statistics.get("attempt_number", 1)
            raise ServerGaveUp(
                f"{self.base_url}{path}: gave up after {tries} tries in {time.monotonic() - start:.0f}s: {exc}"
            ) from None
        raise AssertionError("unreachable")

    def _send(self, path: str, body: dict | None, remaining: float) -> dict:
        """One try; the read timeout never reaches past the request's deadline."""
        limit = max(0.1, min(self.timeout, remaining))
        timeout = httpx.Timeout(limit, connect=min(limit, CONNECT_TIMEOUT))
        try:
            response = self._client.request(
                "POST" if body is not None else "GET", self.base_url + path, json=body, timeout=timeout
            )
        except httpx.ConnectError as exc:
            if "refused" in str(exc).lower() or isinstance(exc.__context__, ConnectionRefusedError):
                raise UsageError(
                    f"{self.base_url}: connection refused; is the server running at {self.base_url}?"
                ) from None
            raise RetryableError(f"cannot connect: {exc}") from None
        except httpx.TimeoutException:
            raise RetryableError(
                f"no answer within {self.timeout:g}s a try, {self.deadline:g}s in all (is the server hung or "
                "overloaded? --model-args timeout=... waits longer)"
            ) from None
        except httpx.TransportError as exc:
            raise RetryableError(f"connection dropped: {type(exc).__name__}: {exc}") from None
        detail = _server_message(response)
        if response.status_code in RETRY_STATUS:
            raise RetryableError(f"HTTP {response.status_code}: {detail}", _retry_after(response))
        if response.status_code in (401, 403):
            raise UsageError(
                f"{self.base_url}: HTTP {response.status_code}; set the API key in $OPENAI_API_KEY "
                "(or name another variable with --model-args api_key_env=NAME)"
            )
        if response.status_code >= 400:
            raise RequestRejected(f"HTTP {response.status_code}: {detail}")
        try:
            return response.json()
        except ValueError:
            raise RetryableError("the answer is not JSON") from None

    def _only_model(self) -> str:
        models = [m["id"] for m in self._request("/models").get("data", [])]
        if len(models) != 1:
            raise UsageError(
                f"{self.base_url} serves {len(models)} models ({', '.join(models)}); "
                "choose one with --model-args model=NAME"
            )
        return models[0]

    def _map(self, function, items: list) -> list:
        """Apply ``function`` to every item concurrently; results come back in order, one per item. If some fail,
        PartialResults carries the finished ones; a server that is down or hung stops the items not yet sent."""
        results, errors = [None] * len(items), {}
        stop = threading.Event()  # set by the first failure that stops sending, in its own thread: no race to cancel

        def send(item):
            if stop.is_set():
                raise CancelledError()
            try:
                return function(item)
            except RequestRejected:
                raise
            except Exception:
                stop.set()
                raise

        pool = ThreadPoolExecutor(self.concurrency)
        try:
            futures = {pool.submit(send, item): i for i, item in enumerate(items)}
            for future in as_completed(futures):
                try:
                    results[futures[future]] = future.result()
                except Exception as exc:  # noqa: BLE001 - every failure is reported below, by index
                    errors[futures[future]] = exc
                    if not isinstance(exc, RequestRejected):  # down, hung or misconfigured: stop sending
                        for other in futures:
                            other.cancel()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if not errors:
            return results
        first = min(errors)
        finished = sum(r is not None for r in results)
        if finished == 0 and not isinstance(errors[first], RequestRejected):
            raise errors[first]  # nothing to keep: the one clear line (refused, hung, bad key)
        failed = sorted(errors)
        raise PartialResults(
            f"request {first} of {len(items)} failed: {errors[first]} ({len(failed)} failed: "
            f"{_indices(failed)}; {finished} finished and kept)",
            results,
            failed,
        )

    def close(self) -> None:
        self._client.close()

    # the request API -----------------------------------------------------------------------------------------------
    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        return self._map(lambda prompt: self._generate_one(prompt, params), list(prompts))

    def _generate_one(self, prompt: str, params: SamplingParams) -> list[Completion]:
        body = {
            "model": self.model,
            "n": params.n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "logprobs": 1 if not self.chat else None,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        if params.top_k:
            body["top_k"] = params.top_k
        if params.ignore_eos:
            body["ignore_eos"] = True
        if self.chat:
            body.pop("logprobs")
            body["messages"] = [{"role": "user", "content": prompt}]
            body["logprobs"] = True
            choices = self._request("/chat/completions", body)["choices"]
            return [
                Completion(text=c["message"]["content"] or "", logprobs=_chat_logprobs(c), finish_reason=_finish(c))
                for c in sorted(choices, key=lambda c: c["index"])
            ]
        body["prompt"] = prompt
        choices = self._request("/completions", body)["choices"]
        return [
            Completion(
                text=c["text"],
                logprobs=[x for x in (c.get("logprobs") or {}).get("token_logprobs") or [] if x is not None],
                finish_reason=_finish(c),
            )
            for c in sorted(choices, key=lambda c: c["index"])
        ]

    def _echo(self, text: str) -> dict:
        body = {"model": self.model, "prompt": text, "echo": True, "logprobs": 1, "max_tokens": 1, "temperature": 0.0}
        logprobs = self._request("/completions", body)["choices"][0].get("logprobs")
        if not logprobs or not logprobs.get("token_logprobs"):
            raise UsageError(
                f"{self.base_url} does not return prompt logprobs (echo + logprobs); loglikelihood "
                "tasks need a server that does, e.g. vLLM"
            )
        return logprobs

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[tuple[float, bool]]:
        return self._map(lambda pair: self._score(*pair), [tuple(r) for r in requests])

    def _score(self, context: str, continuation: str) -> tuple[float, bool]:
        """Sum the logprobs of the echoed tokens that start inside the continuation (the last one is generated)."""
        logprobs = self._echo(context + continuation)
        offsets, values, tops = logprobs["text_offset"], logprobs["token_logprobs"], logprobs.get("top_logprobs")
        prompt_tokens = len(values) - 1  # the final entry is the one generated token
        picked = [i for i in range(prompt_tokens) if offsets[i] >= len(context) and values[i] is not None]
        if not picked:
            raise UsageError(f"continuation {continuation!r} produced no scored tokens; is it empty?")
        total = sum(values[i] for i in picked)
        greedy = all(not tops or not tops[i] or values[i] >= max(tops[i].values()) - 1e-6 for i in picked)
        return total, greedy

    def loglikelihood_rolling(self, texts: list[str]) -> list[float]:
        """Sum of echoed token logprobs; the server cannot score the very first token, so it is left out."""
        return self._map(
            lambda text: sum(v for v in self._echo(text)["token_logprobs"][:-1] if v is not None), list(texts)
        )


def _indices(failed: list[int]) -> str:
    return ", ".join(map(str, failed[:10])) + (", ..." if len(failed) > 10 else "")


def _server_message(response: httpx.Response) -> str:
    """The server's error message (OpenAI's {"error": {"message"}} or the body's start)."""
    try:
        payload = response.json()
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        if isinstance(error, str):
            return error[:300]
    except ValueError:
        pass
    return response.text[:300] or response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks us to wait (Retry-After as seconds or an HTTP date), None when absent."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _finish(choice: dict) -> str:
    return "stop" if choice.get("finish_reason") == "stop" else "length"


def _chat_logprobs(choice: dict) -> list[float]:
    content = (choice.get("logprobs") or {}).get("content") or []
    return [c["logprob"] for c in content]
