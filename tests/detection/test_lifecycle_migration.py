"""Existing rows under issue #15's rules: open cases' spans ended sensibly, reported ones frozen,
categories that no abuse verdict carried cleared (the database refuses them afterwards)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from detection.models import Case
from reviews.models import ReviewDecision
from tests.conftest import World

BEFORE = [
    ("detection", "0006_case_span_end_and_follow_ups"),
    ("reports", "0004_police_report_reason_viewing"),
    ("reviews", "0001_initial"),
]


def _migrate(targets=None) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_existing_cases_and_reviews_are_migrated_sensibly(world: World, settings) -> None:
    settings.CASE_MERGE_GAP_SECONDS = 10
    settings.CASE_MAX_SECONDS = 120
    now = timezone.now()
    try:
        _migrate(BEFORE)
        # Rows as issue #15 found them: spans never ended; a "not abuse" review as "hitting".
        long_ago = world.uncertain_case_b
        Case.objects.filter(pk=long_ago.pk).update(
            started_at=now - dt.timedelta(hours=3), ended_at=now - dt.timedelta(hours=2, minutes=59)
        )
        grown = world.uncertain_case_a
        Case.objects.filter(pk=grown.pk).update(
            started_at=now - dt.timedelta(minutes=9), ended_at=now - dt.timedelta(seconds=1)
        )
        live = Case.objects.create(
            camera=world.camera_b,
            started_at=now - dt.timedelta(seconds=4),
            ended_at=now - dt.timedelta(seconds=2),
            peak_score=0.5,
            band="uncertain",
        )
        reported = world.violent_case_a  # has world.report_a
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO reviews_reviewdecision (case_id, expert_id, verdict, category,"
                " notes, outcome, created_at) VALUES (%s, %s, 'not_abuse', 'hitting', '',"
                " 'dismiss', %s), (%s, %s, 'abuse', 'kicking', '', 'escalate', %s)",
                [live.pk, world.erin.pk, now, live.pk, world.sam.pk, now],
            )

        _migrate()

        by_pk = {c.pk: c for c in Case.objects.all()}
        assert by_pk[long_ago.pk].span_end_reason == Case.SpanEnd.QUIET
        assert by_pk[grown.pk].span_end_reason == Case.SpanEnd.MAX_LENGTH
        assert by_pk[live.pk].span_ended_at is None  # still within its quiet period
        assert by_pk[reported.pk].span_end_reason == Case.SpanEnd.REPORTED
        assert by_pk[reported.pk].span_ended_at == world.report_a.sent_at
        categories = dict(
            ReviewDecision.objects.filter(case=live).values_list("verdict", "category")
        )
        assert categories == {"not_abuse": "none", "abuse": "kicking"}
    finally:
        _migrate()
