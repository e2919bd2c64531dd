"""`harness serve`: any backend behind a small OpenAI-compatible HTTP API (/v1/models, /v1/completions,
/v1/chat/completions), so tools that speak OpenAI can use harness engines, and the openai backend can be tested
against a real server without vLLM.

Requests are handled one at a time per engine (a lock): the engines batch internally, not across HTTP requests.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness.backends.base import SamplingParams


class OpenAIServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, lm, name: str, host: str = "127.0.0.1", port: int = 8000):
        super().__init__((host, port), Handler)
        self.lm = lm
        self.name = name
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: OpenAIServer

    def log_message(self, *args) -> None:  # quiet: one line per request is noise in test output
        pass

    def _reply(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._reply(200, {"object": "list", "data": [{"id": self.server.name, "object": "model"}]})
        else:
            self._reply(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            routes = {"/v1/completions": self._completions, "/v1/chat/completions": self._chat}
            route = routes.get(self.path.rstrip("/"))
            if route is None:
                return self._reply(404, {"error": {"message": f"no route {self.path}"}})
            with self.server.lock:
                self._reply(200, route(body))
        except (ValueError, KeyError, TypeError) as exc:
            self._reply(400, {"error": {"message": f"{type(exc).__name__}: {exc}"}})

    # routes ------------------------------------------------------------------------------------------------------
    def _params(self, body: dict) -> SamplingParams:
        stop = body.get("stop") or ()
        return SamplingParams(n=int(body.get("n", 1)), temperature=float(body.get("temperature", 1.0)),
                              top_p=float(body.get("top_p", 1.0)), top_k=int(body.get("top_k", 0) or 0),
                              max_tokens=int(body.get("max_tokens", 16)),
                              stop=(stop,) if isinstance(stop, str) else tuple(stop), seed=body.get("seed"),
                              ignore_eos=bool(body.get("ignore_eos", False)))

    def _completions(self, body: dict) -> dict:
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        params = self._params(body)
        choices = []
        for p, prompt in enumerate(prompts):
            for k, completion in enumerate(self.server.lm.generate([prompt], params)[0]):
                choice = {"index": p * params.n + k, "text": completion.text,
                          "finish_reason": completion.finish_reason, "logprobs": None}
                if body.get("logprobs") is not None:
                    choice["logprobs"] = self._logprobs(prompt, completion, bool(body.get("echo")))
                if body.get("echo"):
                    choice["text"] = prompt + completion.text
                choices.append(choice)
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                "model": self.server.name, "choices": choices}

    def _logprobs(self, prompt: str, completion, echo: bool) -> dict:
        """Per-token logprobs of the completion, preceded by the prompt's when echo is on (first token: None)."""
        lm = self.server.lm
        if echo and not hasattr(lm, "prompt_logprobs"):
            raise ValueError("this engine cannot score prompt tokens (echo + logprobs)")
        rows = lm.prompt_logprobs(prompt) if echo else []
        offset = len(prompt) if echo else 0
        for token_id, logprob in zip(completion.token_ids, completion.logprobs):
            piece = lm.decode([token_id]) if hasattr(lm, "decode") else ""
            rows.append((piece, offset, logprob, {piece: logprob}))
            offset += len(piece)
        return {"tokens": [r[0] for r in rows], "text_offset": [r[1] for r in rows],
                "token_logprobs": [r[2] for r in rows], "top_logprobs": [r[3] for r in rows]}

    def _chat(self, body: dict) -> dict:
        lm = self.server.lm
        messages = body["messages"]
        tokenizer = getattr(lm, "tokenizer", None)
        if tokenizer is not None and getattr(tokenizer, "chat_template", None):
            prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            prompt = "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"
        params = self._params(body)
        completions = lm.generate([prompt], params)[0]
        choices = [{"index": k, "message": {"role": "assistant", "content": c.text},
                    "finish_reason": c.finish_reason,
                    "logprobs": {"content": [{"logprob": x} for x in c.logprobs]} if body.get("logprobs") else None}
                   for k, c in enumerate(completions)]
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": self.server.name, "choices": choices}


def serve(lm, name: str, host: str, port: int) -> None:
    server = OpenAIServer(lm, name, host, port)
    print(f"serving {name} at http://{host}:{server.server_address[1]}/v1 (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
