"""The shard's window writer: readers hand windows over and go on; the writer stores what has
gathered in batches, keeps going past a failed batch, and stores everything handed over before
it stops. The store here is a stand-in that records its batches (the real one is in
tests/detection/test_store_batch.py); the thread, queue and order are the real ones."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, cast

import pytest

from cameras.ingest.reader import CameraConfig
from cameras.ingest.writer import WindowWriter
from tests.support.reading import file_config

CONFIG = file_config("unused")


class Recording:
    """A store that records its batches and holds each one until released."""

    def __init__(self, *, fail_first: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.started = threading.Event()
        self.fail_first = fail_first
        self.prepared_in: set[str] = set()

    def prepare(self, config: CameraConfig, closed: Any) -> int:
        self.prepared_in.add(threading.current_thread().name)
        return int(closed)

    def store(self, batch: Sequence[int]) -> list[int | Exception]:
        self.started.set()
        assert self.release.wait(10)
        self.batches.append(list(batch))
        if self.fail_first and len(self.batches) == 1:
            raise OSError("disk full")
        # A negative window stands for one whose row was refused (store_ingested_windows
        # answers it with the error).
        return [ValueError("refused") if window < 0 else window for window in batch]


def writer_for(
    store: Recording, *, max_waiting: int = 100, max_batch: int = 100
) -> WindowWriter[int]:
    writer = WindowWriter(store.prepare, store.store, max_waiting=max_waiting, max_batch=max_batch)
    writer.start()
    return writer


def hand_over(writer: WindowWriter[int], *windows: int) -> None:
    for window in windows:
        writer.put(CONFIG, cast(Any, window))  # the stand-in's window is a number


def test_windows_handed_over_while_a_batch_is_stored_go_in_the_next_batch_together():
    store = Recording()
    writer = writer_for(store)
    hand_over(writer, 1)
    assert store.started.wait(5)  # the writer holds window 1...
    hand_over(writer, 2, 3, 4)  # ...while the reader goes on
    store.release.set()
    writer.close()
    assert store.batches == [[1], [2, 3, 4]]
    assert writer.totals.windows_stored == 4 and writer.totals.store_batches == 2
    # Prepared in the readers' (here the test's) thread, never in the writer's.
    assert store.prepared_in == {threading.current_thread().name}


def test_a_batch_is_at_most_max_batch_windows():
    store = Recording()
    writer = writer_for(store, max_batch=2)
    hand_over(writer, 1)
    assert store.started.wait(5)
    hand_over(writer, 2, 3, 4, 5, 6)
    store.release.set()
    writer.close()
    assert store.batches == [[1], [2, 3], [4, 5], [6]]


def test_a_failed_batch_is_logged_and_the_next_one_stored(caplog: pytest.LogCaptureFixture):
    store = Recording(fail_first=True)
    store.release.set()
    writer = writer_for(store)
    hand_over(writer, 1)
    writer.close()
    writer = writer_for(store)
    hand_over(writer, 2)
    writer.close()
    assert store.batches == [[1], [2]]
    assert "could not store 1 window(s)" in caplog.text and "disk full" in caplog.text


def test_a_reader_waits_for_room_when_max_waiting_windows_wait():
    store = Recording()
    writer = writer_for(store, max_waiting=2)
    hand_over(writer, 1)
    assert store.started.wait(5)
    hand_over(writer, 2, 3)  # the queue is full now
    blocked = threading.Thread(target=hand_over, args=(writer, 4))
    blocked.start()
    blocked.join(0.5)
    assert blocked.is_alive(), "a fourth window was taken with no room for it"
    store.release.set()
    blocked.join(5)
    writer.close()
    assert [window for batch in store.batches for window in batch] == [1, 2, 3, 4]


def test_a_window_handed_over_after_the_writer_stopped_is_stored_at_once():
    store = Recording()
    store.release.set()
    writer = writer_for(store)
    writer.close()
    hand_over(writer, 7)
    assert store.batches == [[7]]


def test_close_stores_everything_handed_over_first():
    store = Recording()
    writer = writer_for(store)
    hand_over(writer, 1)
    assert store.started.wait(5)
    hand_over(writer, *range(2, 30))
    closing = threading.Thread(target=writer.close)
    closing.start()
    store.release.set()
    closing.join(10)
    assert not writer.is_alive()
    assert [window for batch in store.batches for window in batch] == list(range(1, 30))


def test_lag_is_how_long_the_oldest_waiting_window_has_waited():
    store = Recording()
    writer = writer_for(store)
    assert writer.lag() == 0.0
    hand_over(writer, 1)
    assert store.started.wait(5)  # window 1 is being stored, and still counts as waiting
    time.sleep(0.3)
    hand_over(writer, 2)
    assert writer.lag() >= 0.3
    store.release.set()
    writer.close()
    assert writer.lag() == 0.0


def test_only_the_windows_stored_count_as_stored():
    store = Recording()
    store.release.set()
    writer = writer_for(store)
    hand_over(writer, 1)
    writer.close()
    writer = writer_for(store)
    hand_over(writer, -2)
    writer.close()
    assert writer.totals.windows_stored == 0 and writer.totals.store_batches == 1
