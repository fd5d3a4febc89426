"""A Celery worker keeps its database connection between tasks, and drops one that failed.

The inference worker runs one task per window: opening a connection for each cost about 5 % of
its time at 64 cameras (py-spy on `bench_pipeline --cameras 64 --detect-stream`). The handlers
under test are the ones `abusewatch.celery` connects to Celery's signals; they are called here
as Celery calls them around a task.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection

from abusewatch.celery import _close_old_connections, _keep_database_connections
from cameras.models import Site

pytestmark = pytest.mark.django_db(transaction=True)


def between_tasks(*, eager: bool = False) -> None:
    """What Celery signals around each task (task_postrun, then the next task_prerun)."""
    task = SimpleNamespace(request=SimpleNamespace(is_eager=eager))
    _close_old_connections(sender=task)
    _close_old_connections(sender=task)


@pytest.fixture
def worker_process(settings: Any) -> Iterator[None]:
    """This test process as a worker after `worker_init`; the connection's age put back after."""
    before = connection.settings_dict["CONN_MAX_AGE"]
    _keep_database_connections()
    yield
    connection.settings_dict["CONN_MAX_AGE"] = before
    connection.close()


def raw_connection() -> Any:
    Site.objects.exists()  # any query opens the connection if it is closed
    return connection.connection


def test_a_worker_reuses_its_connection_for_the_next_tasks(worker_process: None) -> None:
    first = raw_connection()
    for _ in range(3):
        between_tasks()
        assert raw_connection() is first


def test_without_worker_init_every_task_gets_a_fresh_connection() -> None:
    # The web server and management commands: DATABASE_CONN_MAX_AGE, 0 by default.
    assert connection.settings_dict["CONN_MAX_AGE"] == 0
    first = raw_connection()
    between_tasks()
    assert raw_connection() is not first


def test_a_connection_left_inside_a_transaction_is_not_kept(worker_process: None) -> None:
    # A task that died with autocommit off must not hand its half-done transaction on.
    first = raw_connection()
    connection.set_autocommit(False)
    between_tasks()
    assert raw_connection() is not first
    assert connection.get_autocommit()


def test_an_eager_task_leaves_its_callers_connection_alone() -> None:
    # Eager tasks run inside the caller (tests, one-process setups), maybe in its transaction.
    first = raw_connection()
    between_tasks(eager=True)
    assert raw_connection() is first


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="a SQLite file has no server to drop the connection"
)
def test_a_connection_the_database_dropped_is_replaced_before_the_next_task(
    worker_process: None, django_db_blocker: Any
) -> None:
    import psycopg

    first = raw_connection()
    backend_pid = first.info.backend_pid
    params = connection.get_connection_params()
    # As a database restart or an administrator would: end the worker's session server-side.
    with psycopg.connect(
        **{key: params[key] for key in ("host", "port", "user", "dbname") if key in params},
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend_pid])
    between_tasks()
    # CONN_HEALTH_CHECKS: the first query of the task finds the connection dead and reconnects.
    assert Site.objects.exists() in (True, False)
    assert connection.connection.info.backend_pid != backend_pid
