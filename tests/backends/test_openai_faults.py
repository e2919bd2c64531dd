"""The openai backend's failure paths against a tiny local fault-injection server (no model needed): Retry-After,
a hung server, a refused connection, and one prompt that always fails without losing the finished ones."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from harness.backends import SamplingParams
from harness.backends.base import PartialResults
from harness.backends.cache import CachedLM
from harness.backends.openai import OpenAILM, ServerGaveUp
from harness.errors import UsageError


class FakeServer(ThreadingHTTPServer):
    """Answers /v1/completions with the prompt reversed; ``behave(server, prompt)`` may return a fault instead:
    ("status", code, headers, message) or ("hang", seconds)."""

    daemon_threads = True

    def __init__(self, behave):
        super().__init__(("127.0.0.1", 0), FakeHandler)
        self.behave = behave
        self.prompts: list[str] = []
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class FakeHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        with server.lock:
            server.prompts.append(body["prompt"])
        fault = server.behave(server, body["prompt"])
        if fault and fault[0] == "hang":
            time.sleep(fault[1])
            return
        if fault and fault[0] == "status":
            _, code, headers, message = fault
            return self._send(code, {"error": {"message": message, "type": "x", "param": None, "code": None}}, headers)
        self._send(
            200,
            {
                "choices": [
                    {
                        "index": 0,
                        "text": body["prompt"][::-1],
                        "finish_reason": "length",
                        "logprobs": {"token_logprobs": [-1.0]},
                    }
                ]
            },
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PARAMS = SamplingParams(max_tokens=4)


def test_retry_after_is_honoured():
    def behave(server, prompt):
        return ("status", 429, {"Retry-After": "1"}, "slow down") if len(server.prompts) == 1 else None

    server = FakeServer(behave)
    start = time.monotonic()
    ((answer,),) = OpenAILM(server.url, model="m", backoff=0.01).generate(["abc"], PARAMS)
    assert answer.text == "cba" and len(server.prompts) == 2
    assert time.monotonic() - start >= 1.0  # our own backoff (0.01 s) would have retried at once
    server.shutdown()


def test_a_hung_server_fails_in_bounded_time_with_one_line():
    server = FakeServer(lambda server, prompt: ("hang", 30))
    lm = OpenAILM(server.url, model="m", timeout=1.0, backoff=0.01)
    start = time.monotonic()
    with pytest.raises(ServerGaveUp, match="no answer within 1s a try, 2s in all") as caught:
        lm.generate([f"p{i}" for i in range(20)], PARAMS)
    assert time.monotonic() - start < 6  # 2 x timeout per request, and the queued prompts are not sent
    assert "\n" not in str(caught.value)
    assert len(set(server.prompts)) <= lm.concurrency  # the first wave only (each prompt counted once, not per try)
    server.shutdown()


def test_a_refused_connection_asks_whether_the_server_runs():
    url = f"http://127.0.0.1:{free_port()}/v1"
    start = time.monotonic()
    with pytest.raises(UsageError, match=f"is the server running at {url}"):
        OpenAILM(url, model="m", backoff=1.0).generate(["a", "b"], PARAMS)
    assert time.monotonic() - start < 1.0  # at once: no retries


def test_one_failing_prompt_keeps_the_finished_ones(tmp_path):
    def behave(server, prompt):
        return ("status", 400, {}, "prompt 'bad' is too long") if prompt == "bad" else None

    server = FakeServer(behave)
    prompts = ["one", "two", "bad", "four"]
    lm = CachedLM(OpenAILM(server.url, model="m", concurrency=2), tmp_path / "cache.db")
    with pytest.raises(PartialResults, match=r"request 2 of 4 failed: HTTP 400: prompt 'bad' is too long") as caught:
        lm.generate(prompts, PARAMS)
    assert caught.value.failed == [2]
    assert [r and r[0].text for r in caught.value.results] == ["eno", "owt", None, "ruof"]
    server.prompts.clear()
    fixed = ["one", "two", "three", "four"]
    assert [c[0].text for c in lm.generate(fixed, PARAMS)] == ["eno", "owt", "eerht", "ruof"]
    assert server.prompts == ["three"]  # the finished ones came from the cache
    server.shutdown()


def test_server_errors_are_retried_then_reported_with_the_servers_message():
    server = FakeServer(lambda server, prompt: ("status", 503, {}, "overloaded"))
    with pytest.raises(ServerGaveUp, match="gave up after 3 tries.*HTTP 503: overloaded"):
        OpenAILM(server.url, model="m", max_retries=2, backoff=0.01).generate(["a"], PARAMS)
    assert len(server.prompts) == 3
    server.shutdown()
