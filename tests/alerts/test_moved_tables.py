"""Models of the former `operations` app moved to alerts, detection and reports with their rows.

The migrations adopt an existing table (a database made before the move has one, full of rows)
and create it only on a new database. Migrating an app back leaves its tables and rows where
the old app had them; migrating forward again must adopt them untouched.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from alerts.models import WebhookEndpoint
from alerts.notifications import webhook_endpoint_create
from detection.models import RetentionRun
from tests.conftest import World


def _migrate(targets: list[tuple[str, str | None]] | None = None) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_tables_with_rows_are_adopted_not_recreated(world: World) -> None:
    endpoint = webhook_endpoint_create(site=world.site_a, name="hook", url="https://example.org/h")
    run = RetentionRun.objects.create(trigger="command", started_at=world.violent_case_a.started_at)
    try:
        # Back to before the move: the state forgets the models, the tables stay.
        _migrate([("alerts", None), ("detection", "0001_initial")])
        tables = set(connection.introspection.table_names())
        assert {"operations_webhookendpoint", "operations_retentionrun"} <= tables
    finally:
        _migrate()
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == endpoint.secret
    assert RetentionRun.objects.filter(pk=run.pk).exists()
