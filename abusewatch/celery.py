from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_ready, worker_shutdown

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
def _check_model_before_serving(sender: Any = None, **_: Any) -> None:
    """An inference worker whose model files are missing or altered must not start."""
    # Signal handlers import app code when they run: this module is loaded while Django's
    # apps are still being set up (the Celery app is made before any model can be imported).
    from detection.inference import worker_start_check

    amqp = sender.app.amqp if sender is not None else app.amqp
    queues = amqp.queues.consume_from or amqp.queues
    worker_start_check({str(name) for name in queues})


@worker_ready.connect
def _heartbeat_start(sender: Any = None, **_: Any) -> None:
    from abusewatch import heartbeat

    heartbeat.start(str(sender.hostname))


@worker_shutdown.connect
def _heartbeat_stop(sender: Any = None, **_: Any) -> None:
    from abusewatch import heartbeat

    heartbeat.stop(str(sender.hostname))
