"""Small Redis helpers: the broker's address, its queues and the live websocket count.

Both live in Redis because they span processes: every web process adds its own websockets to
one counter, and /metrics, served by any process, reads the total.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

SOCKET_TIMEOUT_SECONDS = 1.0


def redis_py_url(url: str) -> str:
    """The same Redis as redis-py spells it: Kombu (Celery) writes a unix socket as
    redis+socket://PATH, redis-py and channels_redis as unix://PATH."""
    if url.startswith("redis+socket://"):
        return "unix://" + url.removeprefix("redis+socket://")
    return url


# Each open socket is a member of one sorted set, scored by when its process last vouched for
# it. A web process that dies with sockets open stops vouching, and its sockets drop out of
# the count within WEBSOCKET_STALE_SECONDS instead of inflating it for ever.
WEBSOCKET_HEARTBEAT_SECONDS = 30.0
WEBSOCKET_STALE_SECONDS = 3 * WEBSOCKET_HEARTBEAT_SECONDS


def websocket_registry_key() -> str:
    return f"{settings.PIPELINE_REDIS_PREFIX}:ops:websockets"


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


async def websocket_client_seen(channel_name: str) -> None:
    """Count this socket as open now (on connect, then every heartbeat)."""
    seen = {channel_name: time.time()}
    await _on_registry(lambda client: client.zadd(websocket_registry_key(), seen))


async def websocket_client_closed(channel_name: str) -> None:
    await _on_registry(lambda client: client.zrem(websocket_registry_key(), channel_name))


def websocket_clients_open(client: Any) -> int:
    """Sockets some process vouched for within the stale period; older entries are pruned."""
    cutoff = time.time() - WEBSOCKET_STALE_SECONDS
    key = websocket_registry_key()
    client.zremrangebyscore(key, "-inf", f"({cutoff}")
    return int(client.zcard(key))


async def _on_registry(command: Callable[[Any], Awaitable[Any]]) -> None:
    # Best effort: a metric must never stop a websocket from opening or closing.
    if not settings.REDIS_URL:
        return
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(
        redis_url(),
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
    )
    try:
        await command(client)
    except Exception:  # noqa: S110
        pass
    finally:
        await client.aclose()
