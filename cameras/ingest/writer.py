"""One thread per ingest shard that stores its readers' closed windows, a batch at a time.

Readers used to store their own windows, each in its own transaction, in the reader thread.
At 96 cameras that was 48 writers a second queueing for SQLite's one write lock (window end ->
row stored p95 18 s on a 2-core box, windows dropped after their last try) and 48 PostgreSQL
commits a second each waiting for its WAL flush; and a reader waiting on the database was not
reading its stream, so it fell behind the camera and its footage at the end of the lag was
never read at all. Now a reader turns its window into files (`prepare`, in the reader's
thread: the packets refer to its open input) and goes back to its stream; the writer stores
whatever has gathered since its last batch in one go (`store_batch`: files into storage one by
one, rows in one transaction), so the busier the shard, the larger and fewer the transactions.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from django.db import DatabaseError, connection, connections

from cameras.ingest.decoding import IngestTotals
from cameras.ingest.reader import CameraConfig, SessionWindow

logger = logging.getLogger(__name__)

Prepared = TypeVar("Prepared")

_STOP = object()


class WindowWriter(threading.Thread, Generic[Prepared]):
    def __init__(
        self,
        prepare: Callable[[CameraConfig, SessionWindow], Prepared],
        store_batch: Callable[[Sequence[Prepared]], Sequence[Any]],
        *,
        max_waiting: int,
        max_batch: int,
        totals: IngestTotals | None = None,
    ) -> None:
        """`max_waiting` windows may wait to be stored (a reader handing over one more waits
        for room: the bound keeps a stalled database from filling memory with footage);
        `max_batch` go in one transaction at most."""
        super().__init__(name="ingest-writer", daemon=True)
        self.prepare = prepare
        self.store_batch = store_batch
        self.max_batch = max(1, max_batch)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, max_waiting))
        self.totals = totals if totals is not None else IngestTotals()
        # When each window still waiting was handed over (monotonic), oldest first.
        self._handed_over: deque[float] = deque()

    def put(self, config: CameraConfig, closed: SessionWindow) -> None:
        """A reader's closed window: prepared in the reader's thread, then stored by this one,
        in order, soon."""
        prepared = self.prepare(config, closed)
        if not self.is_alive():
            # Stopped (or never started): store it here rather than drop it.
            self.store_batch([prepared])
            return
        # Counted as waiting before the writer can take it (it pops one time per window).
        self._handed_over.append(time.monotonic())
        self._queue.put(prepared)

    def lag(self) -> float:
        """How long the oldest window waiting to be stored has waited (seconds; 0: none)."""
        try:
            return max(0.0, time.monotonic() - self._handed_over[0])
        except IndexError:
            return 0.0

    def close(self, timeout: float = 60.0) -> None:
        """Store every window already handed over, then stop (the readers have stopped)."""
        if self.is_alive():
            self._queue.put(_STOP)
            self.join(timeout)
            if self.is_alive():
                logger.error("the window writer did not finish within %.0f s", timeout)

    def run(self) -> None:
        try:
            stopping = False
            while not stopping:
                item = self._queue.get()
                if item is _STOP:
                    break
                batch = [item]
                while len(batch) < self.max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stopping = True
                        break
                    batch.append(item)
                self._store(batch)
            # A reader that outlived its join in IngestManager.stop_all may have handed over
            # one more window behind the stop: stored too, not left in the queue.
            leftover = []
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not _STOP:
                    leftover.append(item)
            if leftover:
                self._store(leftover)
        finally:
            connections.close_all()

    def _store(self, batch: list[Prepared]) -> None:
        stored = 0
        try:
            # store_batch answers each window with its row's id or the error that kept it out.
            stored = sum(not isinstance(outcome, Exception) for outcome in self.store_batch(batch))
        except DatabaseError:
            # Past its own tries (store_batch retries transient errors): drop the connection
            # so the next batch opens a fresh one, and keep storing.
            logger.exception("could not store %d window(s)", len(batch))
            connection.close()
        except Exception:
            logger.exception("could not store %d window(s)", len(batch))
        finally:
            for _taken in batch:
                self._handed_over.popleft()
        self.totals.add(windows_stored=stored, store_batches=1)
