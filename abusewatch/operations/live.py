"""Small Redis helpers of operations: the broker's queues and the live websocket count.

Both live in Redis because they span processes: every web process adds its own websockets to
one counter, and /metrics, served by any process, reads the total.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from abusewatch.embedded import redis_py_url

SOCKET_TIMEOUT_SECONDS = 1.0


def websocket_counter_key() -> str:
    return f"{settings.PIPELINE_REDIS_PREFIX}:ops:websocket_clients"


def redis_url() -> str:
    return redis_py_url(str(settings.REDIS_URL))


def redis_client() -> Any:
    """A client of the broker's Redis with a short timeout, or None where there is none."""
    if not settings.REDIS_URL:
        return None
    import redis

    return redis.Redis.from_url(
        redis_url(),
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
    )


async def websocket_client_opened() -> None:
    await _websocket_count(+1)


async def websocket_client_closed() -> None:
    await _websocket_count(-1)


async def _websocket_count(delta: int) -> None:
    # Best effort: a metric must never stop a websocket from opening or closing. A process
    # that dies without closing its sockets leaves the count high until the key is reset.
    if not settings.REDIS_URL:
        return
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(
        redis_url(),
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
    )
    try:
        await client.incrby(websocket_counter_key(), delta)
    except Exception:  # noqa: S110
        pass
    finally:
        await client.aclose()
