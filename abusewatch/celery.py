from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import (
    task_postrun,
    task_prerun,
    worker_init,
    worker_ready,
    worker_shutdown,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "abusewatch.settings")

app = Celery("abusewatch")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _keep_freed_heap(sender: Any = None, **_: Any) -> None:
    """Workers reuse freed memory instead of faulting in fresh pages for every window's
    arrays (abusewatch.heap: about 1270 page faults per 20-window batch on the inference
    worker, none with it)."""
    from abusewatch.heap import keep_freed_heap

    keep_freed_heap()


@worker_init.connect
def _keep_database_connections(sender: Any = None, **_: Any) -> None:
    """This worker's connections live WORKER_DATABASE_CONN_MAX_AGE seconds, not one task.

    Set on the connection handler's own settings before any connection opens, so only worker
    processes keep them (the web server and management commands keep DATABASE_CONN_MAX_AGE).
    """
    from django.conf import settings
    from django.db import connections

    max_age = settings.WORKER_DATABASE_CONN_MAX_AGE
    if max_age <= 0:
        return
    for connection in connections.all():
        connection.settings_dict["CONN_MAX_AGE"] = max_age
        # One opened earlier (Django's checks at start-up) was given 0 s to live; the next
        # query reopens it with the new age.
        connection.close()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(sender: Any = None, **_: Any) -> None:
    """Between tasks, what Django does between requests: close a connection that failed, or
    one older than its CONN_MAX_AGE (with 0, every connection, as Celery's fixup would).

    Not around an eager task: it runs inside its caller, whose transaction it must not end.
    """
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@worker_init.connect
def _check_model_before_serving(sender: Any = None, **_: Any) -> None:
    """An inference worker whose model files are missing or altered must not start; one that
    can serve loads its model before it takes a window."""
    # Signal handlers import app code when they run: this module is loaded while Django's
    # apps are still being set up (the Celery app is made before any model can be imported).
    from detection.inference import worker_preload, worker_start_check

    amqp = sender.app.amqp if sender is not None else app.amqp
    queues = {str(name) for name in amqp.queues.consume_from or amqp.queues}
    worker_start_check(queues)
    worker_preload(queues)


@worker_ready.connect
def _heartbeat_start(sender: Any = None, **_: Any) -> None:
    from abusewatch import heartbeat

    heartbeat.start(str(sender.hostname))


@worker_shutdown.connect
def _heartbeat_stop(sender: Any = None, **_: Any) -> None:
    from abusewatch import heartbeat

    heartbeat.stop(str(sender.hostname))
