"""`harness serve`: any backend behind an OpenAI-compatible HTTP API (/v1/models, /v1/completions,
/v1/chat/completions), so tools that speak OpenAI (the `openai` package, lm-evaluation-harness's local-completions
and local-chat-completions) can use harness engines.

Built on FastAPI + uvicorn with pydantic request models (as vLLM's server is): every request is parsed and checked,
so a malformed one gets a 4xx JSON error in OpenAI's shape instead of a dropped connection or a 500. The modules:
schemas.py (request models, limits, the error shape), prepare.py (request -> engine), engine.py (the one engine
thread, the batching queue, departed clients stopped between decode steps), streaming.py and text.py (tokens sent
as they are generated), responses.py (logprobs, usage), middleware.py (body limit, last-resort JSON 500), app.py
(the routes).
"""

from __future__ import annotations

import os
import socket

from harness.errors import UsageError
from harness.serve.app import create_app
from harness.serve.schemas import APIError, Limits

API_KEY_ENV = "HARNESS_API_KEY"


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


__all__ = ["API_KEY_ENV", "APIError", "Limits", "create_app", "serve"]
