"""run_ingest publishes its readers' totals to Redis for the bench, under the names it reads."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any, cast

from cameras.ingest.decoding import INGEST_TOTALS, IngestTotals
from cameras.ingest.manager import IngestManager
from detection.inference import redis_client
from detection.management.commands.run_ingest import publish_stats, stats_key

NAMES = {
    "cameras",
    "packets",
    "frames_decoded",
    "frames_not_decoded",
    "frames_converted",
    "windows",
    "windows_still",
    "frames_shed",
    "windows_shed",
    "windows_stored",
    "store_batches",
    "updated",
}


def manager_with(cameras: int) -> IngestManager:
    return cast(IngestManager, SimpleNamespace(readers={i: object() for i in range(cameras)}))


def test_the_totals_reach_redis_under_the_shard_key(settings: Any) -> None:
    INGEST_TOTALS.add(packets=50, frames_decoded=20, frames_not_decoded=30, windows=2)
    expected = INGEST_TOTALS.snapshot()
    before = time.time()

    assert publish_stats(manager_with(3), 2)

    client = redis_client()
    assert client is not None
    raw = client.get(f"{settings.PIPELINE_REDIS_PREFIX}:ingest:stats:2")
    assert raw is not None and stats_key(2).endswith(":ingest:stats:2")
    record = json.loads(raw)
    assert set(record) == NAMES
    assert record["cameras"] == 3
    for name, value in expected.items():
        assert record[name] >= value  # other readers of this process may have added since
    assert record["frames_not_decoded"] >= 30
    assert record["updated"] >= before
    assert 0 < client.ttl(stats_key(2)) <= max(60, 6 * settings.INGEST_STATS_SECONDS)


def test_without_redis_nothing_is_published(settings: Any) -> None:
    settings.REDIS_URL = ""
    assert not publish_stats(manager_with(1), 0)


def test_totals_add_up_across_threads() -> None:
    import threading

    totals = IngestTotals()

    def count() -> None:
        for _ in range(1000):
            totals.add(packets=1)

    workers = [threading.Thread(target=count) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert totals.snapshot()["packets"] == 4000
