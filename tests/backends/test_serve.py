"""`harness serve` with real clients: the official `openai` package against the CLI server over the tiny Llama,
malformed requests (each a 4xx JSON error in OpenAI's shape), a hypothesis fuzz over random JSON bodies, the API
key, batching of concurrent requests and a client that leaves while queued (in-process uvicorn)."""

import json
import socket
import threading
import time

import httpx
import pytest
from cli_helpers import serving
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.backends import SamplingParams

openai = pytest.importorskip("openai")


@pytest.fixture(scope="module")
def server(tiny_folder):
    with serving("--model", f"hf:{tiny_folder}", "--name", "tiny", "--max-n", 4) as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server, api_key="unused", max_retries=0, timeout=60)


def test_completions_n_logprobs_and_usage(client, tiny):
    reply = client.completions.create(
        model="tiny", prompt="The capital of France is", max_tokens=5, temperature=0, logprobs=1
    )
    ((local,),) = tiny.generate(["The capital of France is"], SamplingParams(max_tokens=5))
    assert reply.choices[0].text == local.text
    assert reply.choices[0].logprobs.token_logprobs == pytest.approx(local.logprobs, abs=1e-4)
    assert reply.usage.completion_tokens == 5
    assert reply.usage.prompt_tokens == len(tiny.encode("The capital of France is"))
    several = client.completions.create(
        model="tiny", prompt=["Hello", "Goodbye"], n=3, max_tokens=4, temperature=1, seed=1
    )
    assert sorted(c.index for c in several.choices) == list(range(6))
    assert 0 < several.usage.completion_tokens <= 2 * 3 * 4


def test_echo_logprobs_score_token_id_prompts(client, tiny):
    ids = tiny.encode("Hello world, how are you")
    reply = client.completions.create(model="tiny", prompt=[ids], max_tokens=1, temperature=0, logprobs=1, echo=True)
    rows = tiny.prompt_logprobs(ids)
    got = reply.choices[0].logprobs.token_logprobs
    assert got[0] is None and got[1:-1] == pytest.approx([r[2] for r in rows[1:]], abs=1e-4)
    assert len(got) == len(ids) + 1  # the prompt's tokens, then the generated one


def test_chat_streaming_and_max_completion_tokens(client):
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    whole = client.chat.completions.create(
        model="tiny", messages=messages, max_completion_tokens=6, temperature=0, logprobs=True
    )
    assert whole.usage.completion_tokens == 6 and len(whole.choices[0].logprobs.content) == 6
    stream = client.chat.completions.create(
        model="tiny",
        messages=messages,
        max_tokens=6,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content and len(chunks) > 3
    assert chunks[-1].usage.completion_tokens == 6
    pieces = [
        c.choices[0].text
        for c in client.completions.create(model="tiny", prompt="Hello", max_tokens=5, temperature=0, stream=True)
    ]
    assert (
        "".join(pieces)
        == client.completions.create(model="tiny", prompt="Hello", max_tokens=5, temperature=0).choices[0].text
    )


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.completions.create(model="gpt-4", prompt="hi", max_tokens=1)


BAD = [
    {"model": "tiny", "prompt": "hi", "max_tokens": -1},
    {"model": "tiny", "prompt": "hi", "max_tokens": 1e9},
    {"model": "tiny", "prompt": "hi", "n": 0},
    {"model": "tiny", "prompt": "hi", "n": 1e6},
    {"model": "tiny", "prompt": "hi", "temperature": -1},
    {"model": "tiny", "prompt": []},
    {"model": "tiny", "prompt": [[5, -3]]},
    {"model": "tiny", "prompt": [[10**9]]},
    {"model": "tiny", "prompt": "word " * 600, "max_tokens": 1},
    {"model": "tiny"},
    ["not", "an", "object"],
]


@pytest.mark.parametrize("body", BAD, ids=range(len(BAD)))
def test_malformed_requests_get_a_4xx_in_openai_shape(server, body):
    reply = httpx.post(f"{server}/completions", json=body, timeout=60)
    assert 400 <= reply.status_code < 500
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]


def test_chat_without_role_and_a_huge_content_length(server):
    reply = httpx.post(f"{server}/chat/completions", json={"model": "tiny", "messages": [{"content": "hi"}]})
    assert reply.status_code == 400 and "role" in reply.json()["error"]["message"]
    host, port = server.removeprefix("http://").split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:  # 1e11 bytes announced, none sent
        sock.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000000000\r\n\r\n"
        )
        head = sock.recv(4096).decode()
    assert head.startswith("HTTP/1.1 413")


def test_a_too_long_prompt_is_truncated_only_when_asked(server):
    body = {"model": "tiny", "prompt": "word " * 600, "max_tokens": 2, "temperature": 0}
    assert httpx.post(f"{server}/completions", json=body, timeout=60).status_code == 400
    reply = httpx.post(f"{server}/completions", json={**body, "truncate_prompt_tokens": 100}, timeout=60)
    assert reply.status_code == 200 and reply.json()["usage"]["prompt_tokens"] == 100


FIELDS = [
    "model",
    "prompt",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "seed",
    "logprobs",
    "echo",
    "stream",
    "top_logprobs",
    "truncate_prompt_tokens",
    "ignore_eos",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["tiny", "user", "assistant"]),
)


def nested(inner):
    keys = st.sampled_from(["role", "content", "type", "text", "include_usage"]) | st.text(max_size=5)
    return st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=3)


values = st.recursive(scalars, nested, max_leaves=12)
bodies = st.dictionaries(st.sampled_from(FIELDS), values, max_size=8).map(
    lambda body: {**body, "max_tokens": 2} if isinstance(body.get("max_tokens"), int) else body
)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(bodies, values), route=st.sampled_from(["/completions", "/chat/completions"]))
def test_fuzz_every_reply_is_well_formed_json(server, body, route):
    reply = httpx.post(
        server + route, content=json.dumps(body), timeout=120, headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == 200 or 400 <= reply.status_code < 500, reply.text
    if reply.headers["content-type"].startswith("text/event-stream"):
        assert reply.text.rstrip().endswith("data: [DONE]")
    else:
        payload = reply.json()
        assert "choices" in payload if reply.status_code == 200 else set(payload["error"]) >= {"message", "type"}


# in-process: the app on a uvicorn thread ----------------------------------------------------------------------------
class Live:
    """``create_app(lm, ...)`` served by uvicorn on a thread (port 0) for as long as the with-block runs."""

    def __init__(self, lm, **kwargs):
        import uvicorn

        from harness.serve import create_app

        self.app = create_app(lm, "tiny", **kwargs)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))

    def __enter__(self):
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


class SlowLM:
    """Wraps an engine: records each generate call's prompts and takes ``delay`` seconds more per call."""

    def __init__(self, lm, delay: float):
        self.lm, self.delay, self.calls = lm, delay, []
        self.tokenizer, self.max_length = lm.tokenizer, lm.max_length

    def encode(self, text):
        return self.lm.encode(text)

    def decode(self, ids):
        return self.lm.decode(ids)

    def generate(self, prompts, params):
        self.calls.append(list(prompts))
        time.sleep(self.delay)
        return self.lm.generate(prompts, params)


def test_api_key_is_required_when_set(tiny):
    with Live(tiny, api_key="s3cret") as live:
        assert httpx.get(f"{live.url}/models").status_code == 401
        assert httpx.get(f"{live.url}/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert (
            httpx.get(f"{live.url}/models", headers={"Authorization": "Bearer s3cret"}).json()["data"][0]["id"]
            == "tiny"
        )


def test_concurrent_requests_share_engine_calls(tiny):
    lm = SlowLM(tiny, delay=1.0)  # the first call holds the engine while the others arrive
    with Live(lm, batch_window=0.05) as live:
        body = {"model": "tiny", "max_tokens": 3, "temperature": 0}
        threads = [
            threading.Thread(
                target=httpx.post,
                args=(f"{live.url}/completions",),
                kwargs={"json": {**body, "prompt": f"Count to {i}"}, "timeout": 60},
            )
            for i in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        several = httpx.post(f"{live.url}/completions", json={**body, "prompt": ["a", "b", "c"]}, timeout=60)
    assert len(several.json()["choices"]) == 3 and lm.calls[-1] == ["a", "b", "c"]
    assert sum(map(len, lm.calls[:-1])) == 8 and len(lm.calls) - 1 <= 3  # 8 requests, at most 3 engine calls


def test_a_client_that_left_while_queued_never_reaches_the_engine(tiny):
    lm = SlowLM(tiny, delay=1.5)
    with Live(lm) as live:
        body = {"model": "tiny", "max_tokens": 2, "temperature": 0.5}  # other params: not batched with the first
        busy = threading.Thread(
            target=httpx.post,
            args=(f"{live.url}/completions",),
            kwargs={"json": {**body, "prompt": "first", "temperature": 0}, "timeout": 60},
        )
        busy.start()
        while not lm.calls:  # the engine is busy with the first request
            time.sleep(0.01)
        with pytest.raises(httpx.TimeoutException):
            httpx.post(f"{live.url}/completions", json={**body, "prompt": "left"}, timeout=0.5)
        busy.join()
        time.sleep(0.5)
        after = httpx.post(f"{live.url}/completions", json={**body, "prompt": "later"}, timeout=60)
    assert after.status_code == 200
    assert ["left"] not in lm.calls and lm.calls[0] == ["first"] and lm.calls[-1] == ["later"]


# streaming, departed clients, bad text, crashes ---------------------------------------------------------------------
class SlowSteps:
    """Wraps a streaming engine (hf, scratch): each decode step takes ``delay`` seconds more, so a completion's
    tokens are spread over a measurable time; counts the steps it ran."""

    streams = True

    def __init__(self, lm, delay: float):
        self.lm, self.delay, self.steps = lm, delay, 0
        self.tokenizer, self.max_length = lm.tokenizer, getattr(lm, "max_length", None)

    def encode(self, text):
        return self.lm.encode(text)

    def decode(self, ids):
        return self.lm.decode(ids)

    def generate(self, prompts, params, on_step=None):
        def slow(tokens):
            if tokens:
                self.steps += 1
                time.sleep(self.delay)
            return on_step(tokens) if on_step else []

        return self.lm.generate(prompts, params, slow)


def timed_chunks(url: str, body: dict) -> tuple[list[float], str]:
    """Seconds from sending to each streamed chunk that carries text, and the text they join to."""
    start, times, text = time.monotonic(), [], ""
    with httpx.stream("POST", f"{url}/completions", json={**body, "stream": True}, timeout=60) as reply:
        for line in reply.iter_lines():
            if line.startswith("data: {"):
                piece = json.loads(line[6:])["choices"][0]["text"]
                if piece:
                    times.append(time.monotonic() - start)
                    text += piece
    return times, text


def test_streamed_tokens_arrive_as_they_are_generated(tiny):
    lm = SlowSteps(tiny, delay=0.03)
    body = {"model": "tiny", "prompt": "Once upon a time", "max_tokens": 40, "temperature": 0, "ignore_eos": True}
    with Live(lm) as live:
        times, text = timed_chunks(live.url, body)
        whole = httpx.post(f"{live.url}/completions", json=body, timeout=60).json()["choices"][0]["text"]
    assert text == whole and len(times) > 20
    assert times[0] < 0.25 * times[-1]  # the first token's chunk did not wait for the last token


def scratch_lm(folder):
    """A one-layer model trained by nobody over a four-word vocabulary, through the scratch engine."""
    import torch

    from harness.backends import load
    from harness.models import ModelConfig, WordTokenizer, build_model, save_checkpoint_dir

    torch.manual_seed(0)
    tok = WordTokenizer(["a", "b", "c", "d"])
    config = ModelConfig(vocab_size=tok.vocab_size, n_layer=1, n_head=2, d_model=16, max_seq_len=64)
    save_checkpoint_dir(folder / "checkpoint", build_model(config), tok, {"add_bos": True})
    return load(f"scratch:{folder}", device="cpu")


def test_the_scratch_engine_streams_too(tmp_path):
    lm = SlowSteps(scratch_lm(tmp_path), delay=0.03)
    body = {"model": "tiny", "prompt": "a b", "max_tokens": 30, "temperature": 0, "ignore_eos": True}
    with Live(lm) as live:
        times, text = timed_chunks(live.url, body)
        whole = httpx.post(f"{live.url}/completions", json=body, timeout=60).json()["choices"][0]["text"]
    assert text == whole and len(times) > 15 and times[0] < 0.25 * times[-1]


@pytest.mark.parametrize("engine", ["hf", "scratch"])
def test_on_step_reports_every_token_and_stops_the_prompts_it_names(engine, tiny, tmp_path):
    lm = tiny if engine == "hf" else scratch_lm(tmp_path)
    params = SamplingParams(n=2, max_tokens=8, temperature=1.0, seed=3, ignore_eos=True)
    seen = {}

    def on_step(tokens):
        for t in tokens:
            seen.setdefault((t.prompt, t.sample), []).append(t.token_id)
        return [0] if len(seen.get((0, 0), [])) >= 3 else []  # prompt 0's client leaves after 3 tokens

    stopped, kept = lm.generate(["a b", "c"], params, on_step)
    assert [c.finish_reason for c in stopped] == ["abort", "abort"] and len(stopped[0].token_ids) == 3
    alone = lm.generate(["c"], params)[0]
    assert [c.token_ids for c in kept] == [c.token_ids for c in alone]  # its batch mate went on, unchanged
    assert all(seen[(1, k)] == kept[k].token_ids for k in range(2))


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_leaves_mid_generation_frees_the_engine(tiny, stream):
    lm = SlowSteps(tiny, delay=0.02)  # 400 tokens: 8 s of engine time if nobody stops it
    long = {"model": "tiny", "prompt": "Tell me", "max_tokens": 400, "ignore_eos": True, "stream": stream}
    with Live(lm) as live:
        left = time.monotonic() + 1.0
        try:  # the client leaves after a second: a read timeout, or (streaming) closing the response
            with httpx.stream("POST", f"{live.url}/completions", json=long, timeout=1.0) as reply:
                for _ in reply.iter_lines():
                    if time.monotonic() > left:
                        break
        except httpx.TimeoutException:
            assert not stream
        start = time.monotonic()
        short = httpx.post(
            f"{live.url}/completions", json={"model": "tiny", "prompt": "Hi", "max_tokens": 2}, timeout=60
        )
        waited = time.monotonic() - start
    assert short.status_code == 200 and len(short.json()["choices"][0]["text"]) > 0
    assert waited < 4.0 and lm.steps < 200  # the long request was stopped soon after its client left


LONE_SURROGATES = [
    {"model": "tiny", "prompt": "a\ud800b", "max_tokens": 1},
    {"model": "tiny", "prompt": ["fine", "x\udfffy"], "max_tokens": 1},
    {"model": "tiny", "prompt": "fine", "stop": ["\ud83d"], "max_tokens": 1},
]


@pytest.mark.parametrize("body", LONE_SURROGATES, ids=range(len(LONE_SURROGATES)))
def test_a_lone_surrogate_is_a_400_naming_it(server, body):
    escaped = {"Content-Type": "application/json"}  # json.dumps writes a lone surrogate as the escape "\ud800"
    reply = httpx.post(f"{server}/completions", content=json.dumps(body), headers=escaped, timeout=60)
    assert reply.status_code == 400 and "lone surrogate" in reply.json()["error"]["message"]
    chat = {"model": "tiny", "messages": [{"role": "user", "content": "a\ud800b"}], "max_tokens": 1}
    reply = httpx.post(f"{server}/chat/completions", content=json.dumps(chat), headers=escaped, timeout=60)
    assert reply.status_code == 400 and "\\ud800" in reply.json()["error"]["message"]
    raw = httpx.post(f"{server}/completions", content=b'{"model": "tiny", "prompt": "\xff"}', timeout=60)
    assert raw.status_code == 400 and "UTF-8" in raw.json()["error"]["message"]


class Broken(SlowLM):
    """An engine that fails inside generate with an error no handler knows."""

    def generate(self, prompts, params):
        raise RuntimeError("the weights are on fire")


@pytest.mark.parametrize("stream", [False, True])
def test_an_unexpected_error_is_a_json_500_without_a_traceback(tiny, stream):
    with Live(Broken(tiny, delay=0)) as live:
        body = {"model": "tiny", "prompt": "Hi", "max_tokens": 2, "stream": stream}
        reply = httpx.post(f"{live.url}/completions", json=body, timeout=60)
        after = httpx.get(f"{live.url}/models", timeout=60)
    assert reply.status_code == 500 and reply.json()["error"]["type"] == "server_error"
    assert "RuntimeError" in reply.text and "Traceback" not in reply.text and after.status_code == 200
