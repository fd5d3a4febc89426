"""End the spans of existing cases by the rules triage now follows (issue #15).

Before, a case's span never ended: a quiet camera's case stayed joinable for ever and continuous
activity grew one case without bound. A case that is already longer than the maximum length
ends there; one whose last window is older than the quiet period ends after it; a case still
within its quiet period stays open, and triage ends it like any other. Reported cases are
frozen by reports' own migration (detection does not know reports).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import migrations
from django.utils import timezone


def end_spans(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    case_model = apps.get_model("detection", "Case")
    now = timezone.now()
    gap = dt.timedelta(seconds=settings.CASE_MERGE_GAP_SECONDS)
    longest = dt.timedelta(seconds=settings.CASE_MAX_SECONDS)
    for case in case_model.objects.filter(span_ended_at__isnull=True).iterator():
        if case.ended_at - case.started_at > longest:
            case.span_end_reason, case.span_ended_at = "max_length", case.ended_at
        elif case.ended_at < now - gap:
            case.span_end_reason, case.span_ended_at = "quiet", case.ended_at + gap
        else:
            continue
        case.save(update_fields=["span_end_reason", "span_ended_at"])


def reopen_spans(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    apps.get_model("detection", "Case").objects.update(span_ended_at=None, span_end_reason="")


class Migration(migrations.Migration):
    dependencies = [("detection", "0006_case_span_end_and_follow_ups")]

    operations = [migrations.RunPython(end_spans, reopen_spans)]
