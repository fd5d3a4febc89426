"""Live messages to browsers over Channels: the transport, with no knowledge of any model.

Who hears a message is decided by `access.policy` (its websocket groups); what a message holds
is decided by the app that owns its subject (detection.announce, cameras.announce,
reports.announce). Every message is JSON with a `type`:
- `case.alert`   a new case; `case.status` a case changed (both carry `case`)
- `camera.status` camera health changed (carries `camera`)
- `report.status` a police report changed (carries `report`)
- `detection.scored` a window was scored (carries `detection`), for live score timelines
- `ops.alert` something an operator must act on (storage quota)
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

_SEND_TIMEOUT_SECONDS = 10.0
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_loop_lock = threading.Lock()


def _broadcast_loop() -> asyncio.AbstractEventLoop:
    """One event loop thread per process for sends from sync code (workers, ingestion, views).

    channels_redis binds its Redis connections to the event loop that opened them. A fresh
    `async_to_sync` per send may run on a new loop each time and intermittently fails on
    connections of a closed one (channels_redis#332), dropping alerts. A loop that lives as
    long as the process keeps one set of connections. Made lazily per pid, so a forked Celery
    child gets its own.
    """
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="alert-broadcast", daemon=True).start()
            _loop_pid = os.getpid()
        return _loop


async def _send_all(layer: Any, groups: list[str], message: dict[str, Any]) -> None:
    for group in groups:
        try:
            # The group travels with the event: a socket re-checks that its user still
            # belongs to it before passing the message on (detection.consumers).
            await layer.group_send(group, {"type": "broadcast", "group": group, "message": message})
        except Exception:
            # A live alert is best effort: the case is stored and the police report sent
            # whether or not a browser hears about it.
            logger.exception("could not send %s to %s", message.get("type"), group)


def send_now(groups: list[str], message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    unique_groups = list(dict.fromkeys(groups))
    if isinstance(layer, InMemoryChannelLayer):
        # The one-process setup: its queues belong to the loop of the process's consumers.
        async_to_sync(_send_all)(layer, unique_groups, message)
        return
    future = asyncio.run_coroutine_threadsafe(
        _send_all(layer, unique_groups, message), _broadcast_loop()
    )
    try:
        future.result(timeout=_SEND_TIMEOUT_SECONDS)
    except Exception:
        logger.exception("could not send %s", message.get("type"))


def broadcast(groups: list[str], message: dict[str, Any]) -> None:
    """Send after the surrounding transaction commits, so no one hears of unsaved work."""
    transaction.on_commit(lambda: send_now(groups, message))
