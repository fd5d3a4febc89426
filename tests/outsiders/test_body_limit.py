"""Request bodies are limited at the ASGI layer, before any view or authentication (issue #16
item 4): a gigabyte pushed at the edge endpoint, the sign-in page or /healthz is cut off at the
path's limit, measured as the bytes the server pulled from the client."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from typing import Any

import pytest

from abusewatch.asgi import application
from abusewatch.body_limit import RequestBodyLimit

GIB = 1024**3
CHUNK = 256 * 1024


class Client:
    """An ASGI client that streams `total` bytes lazily and counts what the server pulls."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.pulled = 0
        self.messages: list[dict[str, Any]] = []
        self._chunk = b"x" * CHUNK

    async def receive(self) -> dict[str, Any]:
        if self.pulled >= self.total:
            await asyncio.sleep(3600)  # the client waits for the answer
        size = min(CHUNK, self.total - self.pulled)
        self.pulled += size
        body = self._chunk if size == CHUNK else self._chunk[:size]
        return {"type": "http.request", "body": body, "more_body": self.pulled < self.total}

    async def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(next(m for m in self.messages if m["type"] == "http.response.start")["status"])

    @property
    def body(self) -> bytes:
        return b"".join(
            m.get("body", b"") for m in self.messages if m["type"] == "http.response.body"
        )


def scope(path: str, *, content_length: int | None) -> dict[str, Any]:
    headers = [(b"host", b"testserver"), (b"content-type", b"multipart/form-data; boundary=x")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("203.0.113.9", 50000),
        "server": ("testserver", 80),
    }


def call(app: Any, path: str, client: Client, *, content_length: int | None) -> None:
    asyncio.run(
        asyncio.wait_for(
            app(scope(path, content_length=content_length), client.receive, client.send), 60
        )
    )


@pytest.mark.parametrize("path", ["/api/edge/clips/", "/accounts/login/", "/healthz"])
def test_a_declared_gigabyte_is_refused_before_a_byte_is_read(path, settings) -> None:
    client = Client(GIB)
    call(application, path, client, content_length=GIB)
    assert client.status == 413
    assert client.pulled == 0
    assert b"too large" in client.body


@pytest.mark.parametrize(
    ("path", "limit_setting"),
    [("/api/edge/clips/", "edge"), ("/accounts/login/", "small"), ("/healthz", "small")],
)
def test_a_streamed_gigabyte_without_length_stops_at_the_limit(
    path, limit_setting, settings
) -> None:
    settings.REQUEST_BODY_MAX_BYTES = 1024 * 1024
    settings.REQUEST_BODY_LIMITS_BY_PATH = {"/api/edge/clips/": 8 * 1024 * 1024}
    limit = 8 * 1024 * 1024 if limit_setting == "edge" else 1024 * 1024
    client = Client(GIB)
    tracemalloc.start()
    try:
        call(application, path, client, content_length=None)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert client.status == 413
    # Pulled: the limit plus at most the one chunk that crossed it, not the gigabyte.
    assert limit < client.pulled <= limit + CHUNK
    # Held in memory: a few MiB for Django's spool of what was read, far below the body sent.
    assert peak < limit + 16 * 1024 * 1024, peak
    if path.startswith("/api/"):
        assert "at most" in json.loads(client.body)["detail"]


def test_a_garbled_content_length_is_refused(settings) -> None:
    garbled = Client(10)

    async def run() -> None:
        request = scope("/accounts/login/", content_length=None)
        request["headers"].append((b"content-length", b"12abc"))
        await application(request, garbled.receive, garbled.send)

    asyncio.run(run())
    assert garbled.status == 413 and garbled.pulled == 0


def test_bodies_within_the_limit_reach_the_application_whole(settings) -> None:
    settings.REQUEST_BODY_MAX_BYTES = 1024 * 1024
    seen: list[bytes] = []

    async def echo(scope: Any, receive: Any, send: Any) -> None:
        more = True
        while more:
            message = await receive()
            seen.append(message.get("body", b""))
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    client = Client(1024 * 1024)  # exactly at the limit
    call(RequestBodyLimit(echo), "/accounts/login/", client, content_length=1024 * 1024)
    assert client.status == 200
    assert sum(len(part) for part in seen) == 1024 * 1024
