"""The audit trail moved from reports to audit without touching a row.

An evidence package pins the chain's newest event and its hash in its signed manifest; built
before the move, it must still verify after it, on the same rows, under the same append-only
triggers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from audit.db import install_append_only_triggers, remove_append_only_triggers
from audit.models import AuditEvent
from audit.services import audit_record, audit_verify_chain
from tests.conftest import World
from tests.reports.test_evidence import download_package, verify

BEFORE_THE_MOVE = [("reports", "0002_audit_events_append_only"), ("audit", None)]


def _migrate(targets: list[tuple[str, str | None]] | None = None) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    return executor


@pytest.mark.django_db(transaction=True)
def test_a_package_built_before_the_move_verifies_after_it(footage: World, tmp_path: Path):
    install_append_only_triggers(connection)  # as in production, guarding the table throughout
    try:
        _migrate(BEFORE_THE_MOVE)
        old_state = MigrationExecutor(connection).loader.project_state(
            [("reports", "0002_audit_events_append_only")]
        )
        old_events = old_state.apps.get_model("reports", "AuditEvent")
        # Built while reports still owned the audit trail.
        path = download_package(footage, tmp_path)
        assert verify(path) == "OK"
        before = list(old_events.objects.order_by("id").values_list("id", "hash", "prev_hash"))
        assert before

        _migrate()

        after = list(AuditEvent.objects.order_by("id").values_list("id", "hash", "prev_hash"))
        assert after[: len(before)] == before  # every row, unchanged
        assert audit_verify_chain() is None
        assert verify(path) == "OK"
        # The chain goes on from where the old layout left it.
        audit_record(actor=None, action="after.the.move")
        assert audit_verify_chain() is None
        # And the triggers still guard the table.
        with pytest.raises(DatabaseError), transaction.atomic():
            AuditEvent.objects.filter(pk=after[0][0]).update(action="rewritten")
    finally:
        remove_append_only_triggers(connection)
        _migrate()
