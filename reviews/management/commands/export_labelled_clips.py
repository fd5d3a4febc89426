from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from reviews.export import export_labelled_clips


class Command(BaseCommand):
    help = (
        "Write the original clips of expert-labelled cases to OUT/abuse and OUT/not_abuse with "
        "a labels.csv (clip,label,source_group), a folder `python -m ml.train --data OUT` reads."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", type=Path)

    def handle(self, *args: Any, out: Path, **options: Any) -> None:
        summary = export_labelled_clips(out)
        counts = ", ".join(f"{label}: {n}" for label, n in sorted(summary.clips.items())) or "none"
        self.stdout.write(
            f"Wrote clips to {out} ({counts}); skipped {summary.skipped_cases} case(s) "
            "without a clear verdict."
        )
