"""A request-size limit at the ASGI layer, before any view, authentication or body parsing.

Django's ASGI handler spools the whole request body to a temporary file before a view runs;
a view's own size check (the edge upload's declared size) therefore comes too late, and an
anonymous client could make the server store a gigabyte per request. This middleware refuses a
body by its declared Content-Length before reading a byte, and counts streamed bytes (chunked
bodies declare none), stopping at the limit: what the server holds is bounded by the limit of
the path, not by what the client sends.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Loose on purpose: Django's handler and Channels' apps each type scope and messages differently.
ASGIApp = Callable[..., Awaitable[None]]


def body_limit_for(path: str) -> int:
    """The most bytes a request body to `path` may have.

    Edge devices push clips of up to EDGE_UPLOAD_MAX_BYTES (plus the multipart envelope);
    every other form and API call is small, so one low limit covers them all.
    """
    from django.conf import settings

    for prefix, limit in settings.REQUEST_BODY_LIMITS_BY_PATH.items():
        if path == prefix:
            return int(limit)
    return int(settings.REQUEST_BODY_MAX_BYTES)


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length header as a number; -1 when it is present but not a number."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None


class RequestBodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        root = str(scope.get("root_path", ""))
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        limit = body_limit_for(path)
        declared = _declared_length(scope)
        if declared is not None and (declared < 0 or declared > limit):
            # Refused before reading a byte of the body.
            await _send_413(send, path, limit)
            return

        received = 0
        over = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Tell the application the client went away: Django's handler then stops
                    # reading and returns without a response, and this middleware answers.
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted_receive, tracked_send)
        if over and not started:
            await _send_413(send, path, limit)


async def _send_413(send: Send, path: str, limit: int) -> None:
    text = (
        f"Request body too large: {path} accepts at most {limit} bytes "
        f"({limit / (1024 * 1024):.1f} MiB)."
    )
    if path.startswith("/api/"):
        body = json.dumps({"detail": text}).encode()
        content_type = b"application/json"
    else:
        body = (text + "\n").encode()
        content_type = b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
