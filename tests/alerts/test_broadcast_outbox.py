"""Live messages leave a process in the order they were posted; a scored window's message does
not hold up the inference worker while Redis is slow (over the real Redis channel layer)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from alerts import broadcast
from alerts.broadcast import send_now, send_soon


@pytest.fixture
def listener() -> Iterator[tuple[str, Any]]:
    layer = get_channel_layer()
    if layer is None or isinstance(layer, InMemoryChannelLayer):
        pytest.skip("needs the Redis channel layer (REDIS_URL)")
    group = f"test-outbox-{uuid.uuid4().hex}"
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    yield group, lambda: received(layer, channel)
    async_to_sync(layer.group_discard)(group, channel)


def received(layer: Any, channel: str) -> list[Any]:
    """Every message waiting on the channel (stops after a quiet second)."""

    async def drain() -> list[Any]:
        got: list[Any] = []
        while True:
            try:
                event = await asyncio.wait_for(layer.receive(channel), timeout=1.0)
            except TimeoutError:
                return got
            got.append(event["message"]["n"])

    return async_to_sync(drain)()


@pytest.fixture
def stalled_sender() -> Iterator[threading.Event]:
    """The process's send loop stuck, as behind a Redis that does not answer; set to free it."""
    loop, _ = broadcast._broadcast_loop()
    release = threading.Event()
    loop.call_soon_threadsafe(release.wait, 30)
    yield release
    release.set()


def run_in_thread(work: Any) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_a_scored_window_is_posted_without_waiting_and_arrives_in_order(
    listener: tuple[str, Any], stalled_sender: threading.Event
) -> None:
    group, messages = listener

    def post_five() -> None:
        for n in range(5):
            send_soon([group], {"type": "detection.scored", "n": n})

    posting = run_in_thread(post_five)
    posting.join(2.0)
    assert not posting.is_alive(), "send_soon waited for the stalled sender"
    # A case message waits until it is sent, and goes after what was posted before it.
    alert = run_in_thread(lambda: send_now([group], {"type": "case.alert", "n": 5}))
    alert.join(1.0)
    assert alert.is_alive(), "send_now returned before its message could be sent"
    stalled_sender.set()
    alert.join(10.0)
    assert not alert.is_alive()
    assert messages() == [0, 1, 2, 3, 4, 5]


def test_a_full_outbox_gives_up_the_oldest_messages(
    listener: tuple[str, Any], stalled_sender: threading.Event, monkeypatch: Any
) -> None:
    group, messages = listener
    monkeypatch.setattr(broadcast, "OUTBOX_LIMIT", 3)
    for n in range(6):
        send_soon([group], {"type": "detection.scored", "n": n})
    stalled_sender.set()
    assert messages() == [3, 4, 5]
