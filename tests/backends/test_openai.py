"""The openai backend against a real OpenAI-compatible server (`harness serve` over the tiny Llama), directly and
through a proxy that injects the faults a real deployment shows: 500s, dropped connections, delays, and a server
that returns no prompt logprobs. The test against a real vLLM server lives in test_vllm.py (tox -e vllm)."""

import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cli_helpers import echo_loglikelihood, harness_env, run_harness, serving

from harness.backends import SamplingParams
from harness.backends.hf import HFLM
from harness.backends.openai import OpenAILM
from harness.errors import UsageError

PAIRS = [
    ("The capital of France is", " Paris"),
    ("The capital of France is", " London"),
    ("Hello", " world, how are you"),
    ("2 + 2 =", " 4"),
]


@pytest.fixture(scope="module")
def server(tiny_folder):
    with serving("--model", f"hf:{tiny_folder}", "--name", "tiny") as url:
        yield url


class FaultProxy(ThreadingHTTPServer):
    """Forwards to ``upstream``; request k fails by ``plan[k % len(plan)]``: ok, 500, drop, delay, or
    nologprobs (forwarded, but the answer's logprobs removed, as from a server that cannot echo them)."""

    daemon_threads = True

    def __init__(self, upstream: str, plan: tuple[str, ...]):
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.upstream = upstream.removeprefix("http://").split("/")[0]
        self.plan = plan
        self.count = 0
        self.faults = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class ProxyHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _forward(self, method: str) -> None:
        proxy = self.server
        with proxy.lock:
            action = proxy.plan[proxy.count % len(proxy.plan)]
            proxy.count += 1
            proxy.faults += action != "ok"
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if action == "500":
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if action == "drop":
            self.connection.shutdown(2)  # the connection dies without a response
            return
        if action == "delay":
            time.sleep(0.3)
        conn = http.client.HTTPConnection(proxy.upstream, timeout=120)
        conn.request(method, self.path, body=body or None, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        if action == "nologprobs":
            payload = json.loads(data)
            for choice in payload.get("choices", []):
                choice["logprobs"] = None
            data = json.dumps(payload).encode()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._forward("GET")

    def do_POST(self):
        self._forward("POST")


@pytest.fixture
def proxy(server):
    proxy = FaultProxy(server, ("ok", "500", "drop", "delay", "ok", "drop"))
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.shutdown()


def test_loglikelihood_matches_a_plain_forward_and_the_engine(server, tiny):
    remote = OpenAILM(server).loglikelihood(PAIRS)
    assert [r[0] for r in remote] == pytest.approx([echo_loglikelihood(tiny, *p) for p in PAIRS], abs=1e-3)
    local = tiny.loglikelihood(PAIRS)  # the hf engine encodes contexts as a server encodes prompts
    assert [r[0] for r in remote] == pytest.approx([x[0] for x in local], abs=1e-3)
    assert [r[1] for r in remote] == [x[1] for x in local]


def test_faults_are_retried_and_each_result_recorded_once(server, proxy):
    direct = OpenAILM(server)
    # faults go by arrival order across 4 concurrent requests, so one request can meet several in a row: room for
    # 30 retries, against the default 6 that a loaded machine once used up ((2/3)^7 per request is not rare)
    flaky = OpenAILM(proxy.url, model="tiny", backoff=0.01, concurrency=4, max_retries=30)
    prompts = [f"Count to {i}:" for i in range(8)]
    greedy = SamplingParams(max_tokens=6)
    assert [c[0].text for c in flaky.generate(prompts, greedy)] == [c[0].text for c in direct.generate(prompts, greedy)]
    assert flaky.loglikelihood(PAIRS) == direct.loglikelihood(PAIRS)
    assert proxy.faults >= 6  # the schedule really injected failures


def test_gives_up_after_max_retries(server):
    proxy = FaultProxy(server, ("500",))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    flaky = OpenAILM(proxy.url, model="tiny", backoff=0.001, max_retries=3)
    with pytest.raises(RuntimeError, match="gave up after 4 tries"):
        flaky.loglikelihood(PAIRS[:1])
    assert proxy.count == 4
    proxy.shutdown()


def test_sampling_n_and_chat(server, tiny_folder):
    lm = OpenAILM(server)
    (samples,) = lm.generate(["Tell me a joke"], SamplingParams(n=3, temperature=1.0, max_tokens=8, seed=1))
    assert len(samples) == 3 and all(len(c.logprobs) == 8 or c.finish_reason == "stop" for c in samples)
    question = ["What is the capital of France?"]
    ((answer,),) = OpenAILM(server, chat=True).generate(question, SamplingParams(max_tokens=8))
    ((local,),) = HFLM(tiny_folder, chat=True).generate(question, SamplingParams(max_tokens=8))
    assert answer.text == local.text  # the server applied the same chat template


def test_a_server_without_prompt_logprobs_is_a_usage_error(server):
    proxy = FaultProxy(server, ("nologprobs",))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    with pytest.raises(UsageError, match="does not return prompt logprobs"):
        OpenAILM(proxy.url, model="tiny").loglikelihood(PAIRS[:1])
    proxy.shutdown()


def test_api_key_never_reaches_run_records(server, tmp_path):
    secret = "sk-test-do-not-write-me"
    result = run_harness(
        "run",
        "--task",
        "graph_cot_llm",
        "--model",
        f"openai:{server}",
        "--limit",
        "2",
        "--task-args",
        "samples=1,budget=8",
        "--out",
        tmp_path,
        env=harness_env(OPENAI_API_KEY=secret),
    )
    assert result.returncode == 0, result.stderr
    written = "".join(
        p.read_text(errors="replace")
        for p in Path(tmp_path).rglob("*")
        if p.is_file() and p.suffix in (".yaml", ".json", ".jsonl")
    )
    assert "graph_cot_llm" in written and secret not in written
    assert secret not in result.stdout + result.stderr


def test_unreachable_server_is_a_usage_error(tmp_path):
    result = run_harness(
        "run", "--task", "graph_cot_llm", "--model", "openai:http://127.0.0.1:9/v1", "--limit", "1", "--out", tmp_path
    )
    assert result.returncode == 2 and "is the server running" in result.stderr


def test_bad_url_is_a_usage_error(tmp_path):
    result = run_harness(
        "run", "--task", "graph_cot_llm", "--model", "openai:localhost", "--limit", "1", "--out", tmp_path
    )
    assert result.returncode == 2 and "give the server's URL" in result.stderr
