"""Any OpenAI-compatible server over HTTP (vLLM's server, `harness serve`, hosted APIs).

Requests go out concurrently (a bounded thread pool) and each is retried with exponential backoff and jitter on
429, 5xx, timeouts and dropped connections; every request fills its own result slot exactly once, in order.
The API key is read from the environment (OPENAI_API_KEY, or the variable named by ``api_key_env``) and is never
written to a log, a fingerprint or a run record.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from harness.backends.base import LM, Completion, SamplingParams
from harness.errors import UsageError

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class RetryableError(Exception):
    """A failure worth trying again (rate limit, server error, dropped connection, timeout)."""


class OpenAILM(LM):
    """The request API over /v1/completions and /v1/chat/completions."""

    name = "openai"

    def __init__(self, base_url: str, model: str = "", chat: bool = False, concurrency: int = 8,
                 max_retries: int = 6, timeout: float = 120.0, backoff: float = 0.5,
                 api_key_env: str = "OPENAI_API_KEY"):
        if not base_url.startswith(("http://", "https://")):
            raise UsageError(f"openai:{base_url}: give the server's URL, e.g. --model openai:http://127.0.0.1:8000/v1")
        self.base_url = base_url.rstrip("/")
        self.chat = chat
        self.concurrency = max(1, concurrency)
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff = backoff
        self._api_key = os.environ.get(api_key_env, "")
        self.model = model or self._only_model()
        identity = f"{self.base_url}|{self.model}|chat={chat}"
        self.fingerprint = "openai:" + hashlib.sha256(identity.encode()).hexdigest()[:16]

    @classmethod
    def from_spec(cls, target: str, **model_args) -> OpenAILM:
        cls.check_args(model_args)  # before any connection
        return cls(target, **model_args)

    # transport ---------------------------------------------------------------------------------------------------
    def _request(self, path: str, body: dict | None = None) -> dict:
        """One HTTP call with retries; raises UsageError for client errors the user must fix."""
        for attempt in range(self.max_retries + 1):
            try:
                return self._send(path, body)
            except RetryableError as exc:
                if attempt == self.max_retries:
                    raise RuntimeError(f"{self.base_url}{path}: gave up after {attempt + 1} tries: {exc}") from None
                delay = self.backoff * (2 ** attempt)
                time.sleep(delay * (0.5 + random.random()))  # full jitter around the exponential step
        raise AssertionError("unreachable")

    def _send(self, path: str, body: dict | None) -> dict:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, headers=headers,
                                         method="POST" if body is not None else "GET")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            if exc.code in RETRY_STATUS:
                raise RetryableError(f"HTTP {exc.code}") from None
            if exc.code in (401, 403):
                raise UsageError(f"{self.base_url}: HTTP {exc.code}; set the API key in $OPENAI_API_KEY "
                                 "(or name another variable with --model-args api_key_env=NAME)") from None
            raise UsageError(f"{self.base_url}{path}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError,
                json.JSONDecodeError) as exc:
            if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, ConnectionRefusedError) \
                    and path == "/models":
                raise UsageError(f"{self.base_url}: connection refused; is the server running?") from None
            raise RetryableError(f"{type(exc).__name__}: {exc}") from None

    def _only_model(self) -> str:
        models = [m["id"] for m in self._request("/models").get("data", [])]
        if len(models) != 1:
            raise UsageError(f"{self.base_url} serves {len(models)} models ({', '.join(models)}); "
                             "choose one with --model-args model=NAME")
        return models[0]

    def _map(self, function, items: list) -> list:
        """Apply ``function`` to every item concurrently; results come back in order, one per item."""
        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(function, items))

    # the request API -----------------------------------------------------------------------------------------------
    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Completion]]:
        return self._map(lambda prompt: self._generate_one(prompt, params), list(prompts))

    def _generate_one(self, prompt: str, params: SamplingParams) -> list[Completion]:
        body = {"model": self.model, "n": params.n, "temperature": params.temperature, "top_p": params.top_p,
                "max_tokens": params.max_tokens, "logprobs": 1 if not self.chat else None}
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
            return [Completion(text=c["message"]["content"] or "", logprobs=_chat_logprobs(c),
                               finish_reason=_finish(c)) for c in sorted(choices, key=lambda c: c["index"])]
        body["prompt"] = prompt
        choices = self._request("/completions", body)["choices"]
        return [Completion(text=c["text"], logprobs=[x for x in (c.get("logprobs") or {}).get("token_logprobs") or []
                                                     if x is not None],
                           finish_reason=_finish(c)) for c in sorted(choices, key=lambda c: c["index"])]

    def _echo(self, text: str) -> dict:
        body = {"model": self.model, "prompt": text, "echo": True, "logprobs": 1, "max_tokens": 1,
                "temperature": 0.0}
        logprobs = self._request("/completions", body)["choices"][0].get("logprobs")
        if not logprobs or not logprobs.get("token_logprobs"):
            raise UsageError(f"{self.base_url} does not return prompt logprobs (echo + logprobs); loglikelihood "
                             "tasks need a server that does, e.g. vLLM")
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
        return self._map(lambda text: sum(v for v in self._echo(text)["token_logprobs"][:-1] if v is not None),
                         list(texts))


def _finish(choice: dict) -> str:
    return "stop" if choice.get("finish_reason") == "stop" else "length"


def _chat_logprobs(choice: dict) -> list[float]:
    content = (choice.get("logprobs") or {}).get("content") or []
    return [c["logprob"] for c in content]
