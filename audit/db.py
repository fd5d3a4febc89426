"""Database triggers that make the audit trail append-only.

The migration installs them whenever settings.AUDIT_EVENTS_APPEND_ONLY is on (always, in
production). Test settings turn it off because Django empties tables between transactional
tests; the tests that check the guarantee install the triggers themselves.
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

_CREATE = {
    "sqlite": [
        """CREATE TRIGGER reports_auditevent_no_update BEFORE UPDATE ON reports_auditevent
           BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END""",
        """CREATE TRIGGER reports_auditevent_no_delete BEFORE DELETE ON reports_auditevent
           BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END""",
    ],
    "postgresql": [
        """CREATE OR REPLACE FUNCTION reports_auditevent_refuse_change() RETURNS trigger AS $$
           BEGIN RAISE EXCEPTION 'audit events are append-only'; END; $$ LANGUAGE plpgsql""",
        """CREATE TRIGGER reports_auditevent_append_only
           BEFORE UPDATE OR DELETE ON reports_auditevent
           FOR EACH ROW EXECUTE FUNCTION reports_auditevent_refuse_change()""",
        # TRUNCATE skips row triggers; refuse it too.
        """CREATE TRIGGER reports_auditevent_no_truncate BEFORE TRUNCATE ON reports_auditevent
           FOR EACH STATEMENT EXECUTE FUNCTION reports_auditevent_refuse_change()""",
    ],
}
_DROP = {
    "sqlite": [
        "DROP TRIGGER IF EXISTS reports_auditevent_no_update",
        "DROP TRIGGER IF EXISTS reports_auditevent_no_delete",
    ],
    "postgresql": [
        "DROP TRIGGER IF EXISTS reports_auditevent_no_truncate ON reports_auditevent",
        "DROP TRIGGER IF EXISTS reports_auditevent_append_only ON reports_auditevent",
        "DROP FUNCTION IF EXISTS reports_auditevent_refuse_change()",
    ],
}


def install_append_only_triggers(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        for statement in _CREATE.get(connection.vendor, []):
            cursor.execute(statement)


def remove_append_only_triggers(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        for statement in _DROP.get(connection.vendor, []):
            cursor.execute(statement)
