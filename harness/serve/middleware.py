"""The ASGI layer around the routes: the body-size limit, and the last resort that turns any unexpected exception
into a JSON 500 (one line in the server's log, no traceback sent to the client or spilled by the server)."""

from __future__ import annotations

import json
import logging

from harness.serve.schemas import error_body

log = logging.getLogger("harness.serve")


class Guard:
    """ASGI middleware: a body over ``max_bytes`` is a 413, refused from its Content-Length before any byte is
    read, and cut off while reading when the client sends it chunked; an exception no handler took is a 500 with
    a JSON body (before the response started) and a one-line log entry."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            too_large = length.isdigit()
            message = "body larger than the server's limit" if too_large else "Content-Length is not a number"
            return await _reply(send, 413 if too_large else 400, f"{message} ({self.max_bytes} bytes)")
        seen = 0
        started = False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise _TooLarge()
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await _reply(send, 413, f"body larger than the server's limit ({self.max_bytes} bytes)")
        except Exception as exc:  # noqa: BLE001 - the last resort: a JSON error, never a traceback
            log.error("%s %s failed: %s: %s", scope.get("method"), scope.get("path"), type(exc).__name__, exc)
            if not started:
                message = f"the server failed on this request ({type(exc).__name__}); see the server's log"
                await _reply(send, 500, message, "server_error")


class _TooLarge(Exception):
    pass


async def _reply(send, status: int, message: str, kind: str = "invalid_request_error") -> None:
    body = json.dumps(error_body(message, kind)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
