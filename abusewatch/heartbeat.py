"""Worker heartbeats: every Celery worker writes the time into Redis every few seconds.

A worker that is hung (stopped with SIGSTOP, stuck in a system call, its process frozen)
stops writing while it still holds its broker connection and its unacknowledged messages, so
a Celery ping to *some* worker does not tell it apart from a healthy one. `/healthz` fails and
the supervisor restarts a worker whose beat is older than WORKER_HEARTBEAT_STALE_SECONDS.

Times are the Redis server's (TIME), so workers on other hosts with skewed clocks agree. A
worker that stops cleanly removes its entry; one killed outright leaves a stale entry until
a worker of the same name beats again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from alerts.live import redis_py_url

logger = logging.getLogger(__name__)

_stop = threading.Event()


@dataclass(frozen=True)
class Beat:
    worker: str
    pid: int
    age_seconds: float


def heartbeat_key() -> str:
    return f"{settings.PIPELINE_REDIS_PREFIX}:worker-heartbeats"


def _client() -> Any:
    import redis

    return redis.Redis.from_url(
        redis_py_url(settings.REDIS_URL), socket_connect_timeout=2.0, socket_timeout=2.0
    )


def _server_seconds(client: Any) -> float:
    seconds, micros = client.time()
    return float(seconds) + float(micros) / 1e6


def beat_once(client: Any, worker: str) -> None:
    value = json.dumps({"at": _server_seconds(client), "pid": os.getpid()})
    client.hset(heartbeat_key(), worker, value)


def beats_read(client: Any | None = None) -> list[Beat]:
    """Every known worker's last beat, with its age by the Redis server's clock."""
    client = client or _client()
    now = _server_seconds(client)
    beats = []
    for raw_name, raw_value in client.hgetall(heartbeat_key()).items():
        try:
            value = json.loads(raw_value)
            beats.append(Beat(raw_name.decode(), int(value["pid"]), now - float(value["at"])))
        except (ValueError, KeyError, TypeError):
            continue  # not ours, or from an older format: ignored, never fatal
    return beats


def _beat_forever(worker: str) -> None:
    client = _client()
    while not _stop.is_set():
        try:
            beat_once(client, worker)
        except Exception as error:  # broker down: the beat resumes when it is back
            logger.warning("heartbeat of %s not written (%s)", worker, type(error).__name__)
        _stop.wait(settings.WORKER_HEARTBEAT_INTERVAL_SECONDS)


def start(worker: str) -> None:
    """Beat in a daemon thread of this worker process (the one a SIGSTOP would freeze)."""
    if not settings.REDIS_URL:
        return
    _stop.clear()
    threading.Thread(target=_beat_forever, args=(worker,), name="heartbeat", daemon=True).start()


def stop(worker: str) -> None:
    _stop.set()
    if settings.REDIS_URL:
        with contextlib.suppress(Exception):  # shutting down with the broker gone
            _client().hdel(heartbeat_key(), worker)
