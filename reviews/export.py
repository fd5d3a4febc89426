"""Labelled clips of reviewed cases, written as a dataset folder for `python -m ml.train`."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from detection.models import Case
from reviews.models import ReviewDecision
from reviews.selectors import case_footage_start

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


def abuse_spans(decisions: list[ReviewDecision]) -> list[tuple[float, float]]:
    """The spans (seconds from the case's footage start) that experts marked as abuse."""
    return [
        (d.span_start_seconds, d.span_end_seconds)
        for d in decisions
        if d.verdict == ReviewDecision.Verdict.ABUSE
        and d.span_start_seconds is not None
        and d.span_end_seconds is not None
    ]


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
        decisions = list(case.decisions.all())
        label = case_label([d.verdict for d in decisions])
        if label is None:
            skipped += 1
            continue
        folder = out / label
        folder.mkdir(exist_ok=True)
        segments = sorted(case.segments.all(), key=lambda s: s.started_at)
        # A case's footage runs from its pre-roll to its post-roll; where experts marked when
        # the abuse happened, only the windows that overlap it are abuse clips, so calm
        # windows around the act do not teach the model that calm is abuse.
        spans = abuse_spans(decisions) if label == "abuse" else []
        origin = case_footage_start(case, segments)
        for segment in segments:
            if not segment.original:
                continue
            start = (segment.started_at - origin).total_seconds()
            end = (segment.ended_at - origin).total_seconds()
            if spans and not any(start <= to and end >= since for since, to in spans):
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
