"""Run the camera readers of this host until stopped (SIGINT/SIGTERM)."""

from __future__ import annotations

import json
import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from cameras.ingest.decoding import INGEST_TOTALS, publishable
from cameras.ingest.manager import IngestManager
from detection.inference import redis_client
from detection.ingest import ingest_manager

logger = logging.getLogger(__name__)


def stats_key(shard_index: int) -> str:
    return f"{settings.PIPELINE_REDIS_PREFIX}:ingest:stats:{shard_index}"


def publish_stats(manager: IngestManager, shard_index: int) -> bool:
    """Write this process's ingest totals to Redis (the bench reads them); False without
    Redis or when it is unreachable (the next round tries again: stats are never worth a crash).
    """
    client = redis_client()
    if client is None:
        return False
    record = publishable(INGEST_TOTALS.snapshot(), cameras=len(manager.readers))
    try:
        # Expires when the process is gone, so a stopped shard's figures do not look live.
        expiry = max(60, round(6 * settings.INGEST_STATS_SECONDS))
        client.set(stats_key(shard_index), json.dumps(record), ex=expiry)
    except Exception as error:  # any redis-py error, or OSError
        logger.warning("could not publish ingest stats: %s", type(error).__name__)
        return False
    return True


def publish_stats_until(
    stop: threading.Event, manager: IngestManager, shard_index: int, every: float
) -> None:
    while not stop.wait(every):
        publish_stats(manager, shard_index)
    publish_stats(manager, shard_index)


class Command(BaseCommand):
    help = "Read every enabled camera, cut windows into segments and queue them for the model."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--shard",
            default="0/1",
            help="INDEX/COUNT: read only cameras whose id %% COUNT == INDEX (one process each).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            index, count = (int(part) for part in str(options["shard"]).split("/"))
        except ValueError:
            raise CommandError("--shard takes INDEX/COUNT, as in 0/2") from None
        if not 0 <= index < count:
            raise CommandError("--shard needs 0 <= INDEX < COUNT")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        manager = ingest_manager(shard_index=index, shard_count=count)
        publisher = threading.Thread(
            target=publish_stats_until,
            args=(stop, manager, index, settings.INGEST_STATS_SECONDS),
            name="ingest-stats",
            daemon=True,
        )
        publisher.start()
        self.stdout.write(f"run_ingest: shard {index}/{count}, polling cameras")
        manager.run(stop, poll_seconds=settings.INGEST_POLL_SECONDS)
        publisher.join(5)
        self.stdout.write("run_ingest: stopped")
