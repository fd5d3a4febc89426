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
import concurrent.futures
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

_SEND_TIMEOUT_SECONDS = 10.0
# Messages waiting to go out of one process. A busy inference worker posts a
# `detection.scored` per window; if Redis stops answering, the oldest are the ones to give up.
OUTBOX_LIMIT = 2000
_loop: asyncio.AbstractEventLoop | None = None
_outbox: asyncio.Queue[_Outgoing] | None = None
_loop_pid: int | None = None
_loop_lock = threading.Lock()


@dataclass(frozen=True)
class _Outgoing:
    layer: Any
    groups: list[str]
    message: dict[str, Any]
    # Set when the message has been handed to the layer; None for send_soon.
    sent: concurrent.futures.Future[None] | None


def _broadcast_loop() -> tuple[asyncio.AbstractEventLoop, asyncio.Queue[_Outgoing]]:
    """One event loop thread per process for sends from sync code (workers, ingestion, views),
    and the one outbox it sends from, in the order messages were posted.

    channels_redis binds its Redis connections to the event loop that opened them. A fresh
    `async_to_sync` per send may run on a new loop each time and intermittently fails on
    connections of a closed one (channels_redis#332), dropping alerts. A loop that lives as
    long as the process keeps one set of connections. Made lazily per pid, so a forked Celery
    child gets its own.
    """
    global _loop, _outbox, _loop_pid
    with _loop_lock:
        if _loop is None or _outbox is None or _loop_pid != os.getpid():
            _loop = asyncio.new_event_loop()
            _outbox = asyncio.Queue()
            threading.Thread(target=_loop.run_forever, name="alert-broadcast", daemon=True).start()
            asyncio.run_coroutine_threadsafe(_send_in_order(_outbox), _loop)
            _loop_pid = os.getpid()
        return _loop, _outbox


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


async def _send_in_order(outbox: asyncio.Queue[_Outgoing]) -> None:
    """One message at a time, so every socket hears a process's messages in posting order."""
    while True:
        outgoing = await outbox.get()
        try:
            await _send_all(outgoing.layer, outgoing.groups, outgoing.message)
        finally:
            if outgoing.sent is not None and not outgoing.sent.done():
                outgoing.sent.set_result(None)


def _post(outbox: asyncio.Queue[_Outgoing], outgoing: _Outgoing) -> None:
    """Runs on the loop thread (the queue is not thread-safe)."""
    if outbox.qsize() >= OUTBOX_LIMIT:
        dropped = outbox.get_nowait()
        logger.warning("live message outbox full: dropped %s", dropped.message.get("type"))
        if dropped.sent is not None and not dropped.sent.done():
            dropped.sent.set_exception(RuntimeError("dropped: outbox full"))
    outbox.put_nowait(outgoing)


def _hand_over(
    groups: list[str], message: dict[str, Any], sent: concurrent.futures.Future[None] | None
) -> bool:
    """Put the message in this process's outbox. False when there was nothing to wait for: no
    channel layer, or the in-memory one (one process, sent here and now)."""
    layer, unique_groups = get_channel_layer(), list(dict.fromkeys(groups))
    if layer is None:
        return False
    if isinstance(layer, InMemoryChannelLayer):
        # The one-process setup: its queues belong to the loop of the process's consumers.
        async_to_sync(_send_all)(layer, unique_groups, message)
        return False
    loop, outbox = _broadcast_loop()
    loop.call_soon_threadsafe(_post, outbox, _Outgoing(layer, unique_groups, message, sent))
    return True


def send_now(groups: list[str], message: dict[str, Any]) -> None:
    """Send and wait (up to _SEND_TIMEOUT_SECONDS) until the layer has it, after every message
    this process posted before."""
    sent: concurrent.futures.Future[None] = concurrent.futures.Future()
    if not _hand_over(groups, message, sent):
        return
    try:
        sent.result(timeout=_SEND_TIMEOUT_SECONDS)
    except Exception:
        logger.exception("could not send %s", message.get("type"))


def send_soon(groups: list[str], message: dict[str, Any]) -> None:
    """Post without waiting for Redis: for frequent, best-effort messages (a scored window) on
    a hot path. Still sent in order with this process's other messages."""
    _hand_over(groups, message, None)


def broadcast(groups: list[str], message: dict[str, Any]) -> None:
    """Send after the surrounding transaction commits, so no one hears of unsaved work."""
    transaction.on_commit(lambda: send_now(groups, message))
