"""Labelled clips of reviewed cases, written as a dataset folder for `python -m ml.train`."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from detection.models import Case
from reviews.models import ReviewDecision

SETTLED = (Case.Status.DISMISSED, Case.Status.ESCALATED, Case.Status.REPORTED, Case.Status.CLOSED)
LABELS = {ReviewDecision.Verdict.ABUSE: "abuse", ReviewDecision.Verdict.NOT_ABUSE: "not_abuse"}


@dataclass(frozen=True)
class ExportSummary:
    clips: dict[str, int]
    skipped_cases: int


def case_label(verdicts: list[str]) -> str | None:
    """The majority of the experts' decisive verdicts; None when they are unsure or tied."""
    counts = Counter(v for v in verdicts if v in LABELS)
    if not counts:
        return None
    ranked = counts.most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None
    return LABELS[ReviewDecision.Verdict(ranked[0][0])]


def export_labelled_clips(out: Path) -> ExportSummary:
    """Copy the original footage of every settled, labelled case into `out/<label>/`.

    `labels.csv` groups clips by camera (`source_group`), so training never validates on a
    camera it has trained on.
    """
    out.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, str]] = []
    written: Counter[str] = Counter()
    skipped = 0
    cases = (
        Case.objects.filter(status__in=SETTLED, decisions__isnull=False)
        .distinct()
        .prefetch_related("segments", "decisions")
        .order_by("pk")
    )
    for case in cases:
        label = case_label([d.verdict for d in case.decisions.all()])
        if label is None:
            skipped += 1
            continue
        folder = out / label
        folder.mkdir(exist_ok=True)
        for segment in sorted(case.segments.all(), key=lambda s: s.started_at):
            if not segment.original:
                continue
            suffix = PurePosixPath(segment.original.name or "").suffix.lower() or ".mp4"
            name = f"case{case.pk}_segment{segment.pk}{suffix}"
            try:
                with segment.original.open("rb") as source, (folder / name).open("wb") as target:
                    shutil.copyfileobj(source, target)
            except FileNotFoundError:
                continue
            rows.append((f"{label}/{name}", label, str(case.camera_id)))
            written[label] += 1
    with (out / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip", "label", "source_group"])
        writer.writerows(rows)
    return ExportSummary(clips=dict(written), skipped_cases=skipped)
