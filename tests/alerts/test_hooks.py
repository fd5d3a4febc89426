"""The operations hooks in other apps: case alerts notify, websockets are counted, beat runs."""

from __future__ import annotations

import asyncio
import time
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from abusewatch.celery import app as celery_app
from abusewatch.supervisor import process_commands
from alerts.live import (
    WEBSOCKET_STALE_SECONDS,
    redis_client,
    websocket_clients_open,
    websocket_registry_key,
)
from alerts.models import CaseNotification
from detection.announce import broadcast_case
from detection.consumers import AlertConsumer
from tests.conftest import World

pytestmark = pytest.mark.usefixtures("media_root")


@pytest.mark.django_db
def test_a_broadcast_case_is_notified(
    world: World, settings, eager_tasks, django_capture_on_commit_callbacks
):
    settings.MQTT_URL = ""
    with django_capture_on_commit_callbacks(execute=True):
        broadcast_case(world.uncertain_case_a)
    notification = CaseNotification.objects.get(case=world.uncertain_case_a)
    assert notification.band == "uncertain" and not notification.suppressed
    with django_capture_on_commit_callbacks(execute=True):
        broadcast_case(world.uncertain_case_a, event="case.status")
    assert CaseNotification.objects.filter(case=world.uncertain_case_a).count() == 1


@pytest.mark.django_db(transaction=True)
def test_websocket_clients_are_counted(world: World):
    client = redis_client()
    key = websocket_registry_key()
    client.delete(key)
    # A socket of a web process that died without closing it: last vouched for long ago.
    client.zadd(key, {"dead-process-socket": time.time() - WEBSOCKET_STALE_SECONDS - 5})

    async def session(user, *, accepted: bool) -> None:
        communicator = WebsocketCommunicator(AlertConsumer.as_asgi(), "/ws/alerts/")
        communicator.scope["user"] = user
        connected, _code = await communicator.connect()
        assert connected is accepted
        if accepted:
            # The socket is registered just after the accept frame goes out: wait for it.
            for _ in range(50):
                if websocket_clients_open(client) == 1:
                    break
                await asyncio.sleep(0.05)
            assert websocket_clients_open(client) == 1
            # The heartbeat keeps vouching for an open socket.
            first_seen = client.zrange(key, 0, -1, withscores=True)[0][1]
            await asyncio.sleep(0.3)
            assert client.zrange(key, 0, -1, withscores=True)[0][1] > first_seen
        await communicator.disconnect()

    with mock.patch("detection.consumers.WEBSOCKET_HEARTBEAT_SECONDS", 0.1):
        async_to_sync(session)(world.alice, accepted=True)
    assert websocket_clients_open(client) == 0
    assert client.zcard(key) == 0  # the dead process's entry is pruned, not just skipped
    # A socket refused (no role) is never counted.
    async_to_sync(session)(world.charlie, accepted=False)
    assert websocket_clients_open(client) == 0


def test_beat_runs_retention_under_the_supervisor():
    command = process_commands("127.0.0.1", 8000)["beat"]
    assert command[command.index("-A") + 1] == "abusewatch" and "beat" in command
    entry = celery_app.conf.beat_schedule["operations-retention"]
    assert entry["task"] in celery_app.tasks
    assert entry["options"]["queue"] == "default"


def test_tasks_are_routed_to_their_queues():
    def queue_of(task_name: str) -> str:
        route = celery_app.amqp.router.route({}, task_name)
        return str(route["queue"].name)

    assert queue_of("detection.analyse_segment") == "inference"
    for name in ("operations.case_notify", "operations.webhook_deliver", "operations.mqtt_publish"):
        assert queue_of(name) == "default"
