from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from detection.models import RetentionRun
from detection.retention import retention_run


class Command(BaseCommand):
    help = (
        "Erase safe footage past its site's retention (and the oldest safe footage while over "
        "MEDIA_QUOTA_BYTES), once. Footage of open, reviewed, escalated or reported cases is "
        "never erased. --dry-run lists what would go and changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="list, erase nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = bool(options["dry_run"])
        report = retention_run(dry_run=dry_run, trigger=RetentionRun.Trigger.COMMAND)
        verb = "would erase" if dry_run else "erased"
        for item in report.erasures:
            self.stdout.write(
                f"{verb} segment {item.segment_id} camera {item.camera_id} "
                f"{item.started_at.isoformat()} ({item.reason}, {item.bytes} bytes)"
            )
        quota = f" of quota {report.quota_bytes}" if report.quota_bytes else ""
        self.stdout.write(
            f"{len(report.erasures)} segment(s) {verb}, {report.freed_bytes} bytes; "
            f"storage {report.storage_bytes} bytes{quota}"
        )
        if report.quota_exceeded:
            self.stderr.write(
                "storage is over quota and only held case footage is left: add space "
                "or raise MEDIA_QUOTA_BYTES"
            )
