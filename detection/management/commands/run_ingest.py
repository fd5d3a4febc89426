"""Run the camera readers of this host until stopped (SIGINT/SIGTERM)."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from detection.ingest import ingest_manager


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
        self.stdout.write(f"run_ingest: shard {index}/{count}, polling cameras")
        manager.run(stop, poll_seconds=settings.INGEST_POLL_SECONDS)
        self.stdout.write("run_ingest: stopped")
