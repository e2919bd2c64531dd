"""`harness serve` batching: 16 concurrent clients against the same 16 requests sent one by one.

The server gathers requests that arrive together (same sampling parameters) into one engine call, so the concurrent
clients share forward passes; one by one, each request is its own call. Same server, same prompts, greedy. Usage:

    python benchmarks/serve_batching.py --model hf:smollm2 --threads 1 [--clients 16 --max-tokens 32]

Prints both wall times and their ratio (one by one / concurrent; higher is better). Not a timed test.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

import httpx
import torch
import uvicorn

from harness import backends
from harness.serve import create_app


def start(lm) -> tuple[uvicorn.Server, str]:
    """The app on a uvicorn thread, on a free port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(lm, "bench"), log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def ask(url: str, prompt: str, max_tokens: int) -> str:
    body = {"model": "bench", "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True}
    reply = httpx.post(f"{url}/completions", json=body, timeout=600)
    reply.raise_for_status()
    return reply.json()["choices"][0]["text"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hf:smollm2")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lm = backends.load(args.model)
    server, url = start(lm)
    prompts = [f"Question {i}: name a city in country number {i}. Answer:" for i in range(args.clients)]
    ask(url, prompts[0], 2)  # warm-up
    start_time = time.perf_counter()
    serial = [ask(url, p, args.max_tokens) for p in prompts]
    one_by_one = time.perf_counter() - start_time
    answers: list[str | None] = [None] * len(prompts)

    def client(i: int) -> None:
        answers[i] = ask(url, prompts[i], args.max_tokens)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(prompts))]
    start_time = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    concurrent = time.perf_counter() - start_time
    server.should_exit = True
    calls = server.config.app.state.engine.calls
    print(f"{args.clients} requests x {args.max_tokens} tokens on {args.model} ({args.threads} torch thread(s))")
    print(
        f"one by one: {one_by_one:.2f}s   concurrent: {concurrent:.2f}s   ratio: {one_by_one / concurrent:.1f}x   "
        f"engine calls in all: {calls}   same answers: {answers == serial}"
    )


if __name__ == "__main__":
    main()
