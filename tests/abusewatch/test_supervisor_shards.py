"""Ingestion over N processes: how many, which camera each reads, how they are started."""

from __future__ import annotations

import pytest

from abusewatch import ingest_shard
from abusewatch.heartbeat import heartbeat_key
from abusewatch.supervisor import (
    INGEST_SHARDS_AUTO_MAX,
    MEDIA_NICENESS,
    POSE_NICENESS,
    ingest_shard_count,
    process_commands,
)
from cameras.ingest.manager import IngestManager
from cameras.models import Camera
from ml.input_spec import InputSpec
from tests.factories import CameraFactory


def test_ingest_shards_default_to_one_per_core_within_a_bound() -> None:
    assert ingest_shard_count(0, 2) == 2
    assert ingest_shard_count(0, 1) == 1
    assert ingest_shard_count(0, None) == 1  # os.cpu_count() may not know
    assert ingest_shard_count(0, 64) == INGEST_SHARDS_AUTO_MAX
    # A count an operator chose is kept, above the bound or above the cores.
    assert ingest_shard_count(3, 2) == 3
    assert ingest_shard_count(12, 64) == 12


def niceness(command: list[str]) -> int:
    return int(command[2]) if command[:2] == ["nice", "-n"] else 0


def test_the_supervisor_starts_one_process_per_shard() -> None:
    commands = process_commands("127.0.0.1", 8000, ingest_shards=3)
    shards = {name: command for name, command in commands.items() if name.startswith("ingest")}
    assert sorted(shards) == ["ingest-0", "ingest-1", "ingest-2"]
    for index in range(3):
        command = shards[f"ingest-{index}"]
        assert command[-2:] == ["--shard", f"{index}/3"]
        assert "abusewatch.ingest_shard" in command


def test_ingestion_and_stage_one_keep_priority_and_pose_and_media_wait() -> None:
    without_pose = process_commands("127.0.0.1", 8000, ingest_shards=2)
    assert "pose" not in without_pose
    commands = process_commands("127.0.0.1", 8000, ingest_shards=2, pose_queue="pose")
    assert niceness(commands["ingest-0"]) == niceness(commands["ingest-1"]) == 0
    assert niceness(commands["inference"]) == 0
    assert niceness(commands["pose"]) == POSE_NICENESS > 0
    assert niceness(commands["media"]) == MEDIA_NICENESS > POSE_NICENESS
    pose = commands["pose"]
    assert pose[pose.index("-Q") + 1] == "pose"
    assert pose[pose.index("-P") + 1] == "solo"
    # The stage-1 worker does not also take the pose queue.
    inference = commands["inference"]
    assert inference[inference.index("-Q") + 1] == "inference"


def managers(count: int) -> list[IngestManager]:
    return [
        IngestManager(
            shard_index=index,
            shard_count=count,
            on_window=lambda *_: None,
            frame_spec=InputSpec,
        )
        for index in range(count)
    ]


def assert_each_read_once(count: int) -> None:
    readable = set(
        Camera.objects.filter(enabled=True).exclude(source_uri="").values_list("pk", flat=True)
    )
    read: list[int] = []
    for manager in managers(count):
        read.extend(manager.desired())
    assert sorted(read) == sorted(readable), f"{count} shards"


@pytest.mark.django_db
@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_every_readable_camera_is_read_by_exactly_one_shard(count: int) -> None:
    cameras = [CameraFactory(source_uri=f"rtsp://127.0.0.1:8554/cam{n}") for n in range(11)]
    CameraFactory(source_uri="")  # nothing to read
    CameraFactory(source_uri="rtsp://127.0.0.1:8554/off", enabled=False)
    assert_each_read_once(count)

    # Cameras added, removed, disabled, their source cleared, enabled again.
    CameraFactory.create_batch(4, source_uri="rtsp://127.0.0.1:8554/new")
    cameras[0].delete()
    cameras[5].delete()
    Camera.objects.filter(pk=cameras[1].pk).update(enabled=False)
    Camera.objects.filter(pk=cameras[2].pk).update(source_uri="")
    assert_each_read_once(count)
    Camera.objects.filter(pk=cameras[1].pk).update(enabled=True)
    assert_each_read_once(count)


@pytest.mark.django_db
def test_adding_a_camera_moves_no_other_camera_between_shards() -> None:
    # A camera that changes shard is closed by one process and opened by another: seconds of
    # footage lost. The rule keeps every existing camera where it is.
    CameraFactory.create_batch(7, source_uri="rtsp://127.0.0.1:8554/cam")
    before = {i: set(m.desired()) for i, m in enumerate(managers(3))}
    CameraFactory.create_batch(3, source_uri="rtsp://127.0.0.1:8554/cam")
    Camera.objects.order_by("pk").first().delete()  # type: ignore[union-attr]
    after = {i: set(m.desired()) for i, m in enumerate(managers(3))}
    for index in range(3):
        remaining = before[index] & set(Camera.objects.values_list("pk", flat=True))
        assert remaining <= after[index]


def test_shard_arguments_are_checked() -> None:
    assert ingest_shard.parse_shard("1/2") == (1, 2)
    for wrong in ("2/2", "-1/2", "1", "a/b", "1/0"):
        with pytest.raises(ValueError, match="--shard"):
            ingest_shard.parse_shard(wrong)


def test_the_heartbeats_of_retired_shards_are_forgotten() -> None:
    import redis
    from django.conf import settings as django_settings

    from abusewatch.embedded import redis_py_url

    client = redis.Redis.from_url(redis_py_url(django_settings.REDIS_URL))
    key = heartbeat_key()
    client.delete(key)
    for name in ("ingest-0@box", "ingest-1@box", "ingest-2@box", "ingest-x@box"):
        client.hset(key, name, "{}")
    client.hset(key, "ingest-3@other-host", "{}")  # another host's shard: not ours to judge
    client.hset(key, "inference@box", "{}")
    try:
        removed = ingest_shard.forget_retired_shards(client, count=2, host="box")
        assert sorted(removed) == ["ingest-2@box", "ingest-x@box"]
        left = sorted((k.decode() if isinstance(k, bytes) else k) for k in client.hkeys(key))
        assert left == ["inference@box", "ingest-0@box", "ingest-1@box", "ingest-3@other-host"]
    finally:
        client.delete(key)


@pytest.mark.django_db
def test_healthz_counts_the_shards_and_a_hung_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from django.test import Client

    from abusewatch.celery import app
    from alerts.live import redis_client

    client = redis_client()
    assert client is not None
    key = heartbeat_key()
    client.delete(key)
    now = float(client.time()[0])
    client.hset(key, "inference@box", json.dumps({"at": now, "pid": 1}))
    client.hset(key, "ingest-0@box", json.dumps({"at": now, "pid": 2}))
    client.hset(key, "ingest-1@box", json.dumps({"at": now - 60, "pid": 3}))
    monkeypatch.setattr(app.control, "ping", lambda timeout: [{"inference@box": {"ok": "pong"}}])
    try:
        response = Client().get("/healthz")
        assert response.status_code == 503
        workers = response.json()["checks"]["workers"]
        assert workers == {"ok": False, "count": 1, "hung": 1, "ingest_shards": 2}
        client.hset(key, "ingest-1@box", json.dumps({"at": now, "pid": 3}))
        workers = Client().get("/healthz").json()["checks"]["workers"]
        assert workers == {"ok": True, "count": 1, "ingest_shards": 2}
    finally:
        client.delete(key)
