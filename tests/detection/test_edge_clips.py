"""POST /api/edge/clips/: a camera box pushes its own windows with the camera's upload token."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import av
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from bench.clips import fixture_clips
from cameras.models import Camera
from cameras.services import camera_issue_upload_token
from detection.models import Detection, Segment
from tests.conftest import api_as
from tests.support.audio import video_packet_digest
from tests.support.live import wait_for

URL = "/api/edge/clips/"
# An hour ago in Seoul time, whole seconds: recent enough for EDGE_UPLOAD_MAX_AGE_DAYS on any
# day the suite runs.
START = (
    (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    .astimezone(dt.timezone(dt.timedelta(hours=9)))
    .replace(microsecond=0)
    .isoformat()
)


def media_files() -> set[Path]:
    root = Path(settings.MEDIA_ROOT)
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@pytest.fixture
def token(world) -> str:
    return camera_issue_upload_token(camera=world.camera_a, actor=world.alice)


@pytest.fixture
def clip_bytes() -> bytes:
    return fixture_clips()[0].read_bytes()


def push(
    token: str | None,
    content: bytes,
    *,
    name: str = "clip.mp4",
    started_at: str | None = START,
    auth_scheme: str = "Bearer",
    client=None,
):
    client = client or api_as(None)
    headers = {"HTTP_AUTHORIZATION": f"{auth_scheme} {token}"} if token is not None else {}
    data: dict[str, object] = {"clip": SimpleUploadedFile(name, content, content_type="video/mp4")}
    if started_at is not None:
        data["started_at"] = started_at
    return client.post(URL, data, format="multipart", **headers)


@pytest.mark.django_db
def test_a_pushed_clip_is_stored_unaltered_with_a_playable_preview(world, token, clip_bytes):
    response = push(token, clip_bytes)
    assert response.status_code == 202, response.json()
    segment = Segment.objects.get(pk=response.json()["segment"])
    assert segment.camera == world.camera_a and segment.source == Segment.Source.EDGE
    assert segment.started_at == dt.datetime.fromisoformat(START)
    assert 1.5 < segment.duration_seconds < 2.5
    # The fixture clip carries a sound track: the evidence is the device's video bitstream,
    # packet for packet, without it (no audio recording from CCTV, PIPA Art. 25(5)).
    original = Path(segment.original.path)
    with av.open(str(original)) as stored:
        assert not stored.streams.audio and len(stored.streams) == 1
    source = Path(settings.MEDIA_ROOT) / "sent.mp4"
    source.write_bytes(clip_bytes)
    assert video_packet_digest(original) == video_packet_digest(source)
    source.unlink()
    assert segment.original_sha256 == hashlib.sha256(original.read_bytes()).hexdigest()
    preview = Path(segment.preview.path)
    assert preview != Path(segment.original.path)
    with av.open(str(preview)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert not container.streams.audio
    head = preview.read_bytes()[:4096]
    assert head.find(b"moov") != -1 and (
        head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat")
    )
    assert segment.motion_score is not None and segment.status in {"pending", "skipped"}


def _mjpeg_avi(source: Path, target: Path, seconds: float = 2.0) -> bytes:
    """A camera box that records Motion-JPEG in AVI, as many cheap ones do."""
    with av.open(str(source)) as container, av.open(str(target), "w") as output:
        stream = output.add_stream("mjpeg", rate=10)
        stream.pix_fmt = "yuvj420p"
        for index, frame in enumerate(container.decode(video=0)):
            if index % 3:  # the 30-fps fixture at 10 fps
                continue
            if stream.width == 0:
                stream.width, stream.height = frame.width, frame.height
            for packet in stream.encode(frame.reformat(format="yuvj420p")):
                output.mux(packet)
            if index / 30 >= seconds:
                break
        for packet in stream.encode():
            output.mux(packet)
    return target.read_bytes()


@pytest.mark.django_db
def test_a_motion_jpeg_clip_is_kept_as_sent_with_an_h264_preview(world, token, tmp_path):
    content = _mjpeg_avi(fixture_clips()[1], tmp_path / "box.avi")
    response = push(token, content, name="box.avi")
    assert response.status_code == 202, response.json()
    segment = Segment.objects.get(pk=response.json()["segment"])
    assert Path(segment.original.path).read_bytes() == content
    assert 1.0 < segment.duration_seconds < 3.0
    with av.open(segment.original.path) as original:
        assert original.streams.video[0].codec_context.name == "mjpeg"
    with av.open(segment.preview.path) as preview:
        assert preview.streams.video[0].codec_context.name == "h264"
        assert preview.streams.video[0].frames > 0 or preview.duration


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("header", "why"),
    [
        (None, "missing"),
        ("Bearer not-a-token", "wrong"),
        ("Token {token}", "wrong scheme"),
        ("Bearer ", "empty"),
    ],
)
def test_missing_or_wrong_token_is_401_and_stores_nothing(world, token, clip_bytes, header, why):
    client = api_as(None)
    kwargs = {"HTTP_AUTHORIZATION": header.format(token=token)} if header else {}
    before = media_files()
    response = client.post(
        URL,
        {"clip": SimpleUploadedFile("c.mp4", clip_bytes), "started_at": START},
        format="multipart",
        **kwargs,
    )
    assert response.status_code == 401, why
    assert "token" in response.json()["detail"].lower()
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not Segment.objects.exists() and media_files() == before


@pytest.mark.django_db
def test_token_of_a_disabled_camera_is_refused(world, token, clip_bytes):
    Camera.objects.filter(pk=world.camera_a.pk).update(enabled=False)
    assert push(token, clip_bytes).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("user", ["charlie", "alice", "olga"])
def test_a_signed_in_user_without_the_camera_token_cannot_push(world, clip_bytes, user):
    client = api_as(getattr(world, user))
    response = client.post(
        URL,
        {"clip": SimpleUploadedFile("c.mp4", clip_bytes), "started_at": START},
        format="multipart",
    )
    assert response.status_code == 401
    assert not Segment.objects.exists()


@pytest.mark.django_db
def test_bad_clips_are_refused_with_a_reason_and_nothing_is_stored(
    world, token, clip_bytes, settings
):
    settings.EDGE_UPLOAD_MAX_BYTES = 500_000
    cases = {
        "corrupt": (os.urandom(50_000), "clip.mp4", (400, 415), "video"),
        "truncated": (clip_bytes[: len(clip_bytes) // 3], "clip.mp4", (400, 415), ""),
        "empty": (b"", "clip.mp4", (400,), "empty"),
        "text as mp4": (b"hello, I am not a video\n" * 100, "clip.mp4", (400, 415), "video"),
        "wrong type": (b"\x89PNG\r\n\x1a\n" + os.urandom(1000), "photo.png", (415,), "video file"),
        "huge": (os.urandom(600_000), "clip.mp4", (413,), "larger"),
        "hostile name": (clip_bytes, "clip;rm -rf ~.mp4", (400,), "file name"),
        "long name": (clip_bytes, "a" * 200 + ".mp4", (400,), "file name"),
        "hidden name": (clip_bytes, ".htaccess.mp4", (400,), "file name"),
    }
    before = media_files()
    for label, (content, name, codes, words) in cases.items():
        response = push(token, content, name=name)
        assert response.status_code in codes, (label, response.status_code, response.content)
        assert words.lower() in response.json()["detail"].lower(), (label, response.json())
    assert not Segment.objects.exists()
    assert media_files() == before


@pytest.mark.django_db
def test_path_in_the_file_name_never_reaches_the_disk(world, token, clip_bytes):
    # Django keeps only the base name; whatever survives, storage uses names of its own.
    response = push(token, clip_bytes, name="../../../../tmp/evil.mp4")
    assert response.status_code in (202, 400)
    assert not Path("/tmp/evil.mp4").exists()
    for path in media_files():
        assert "evil" not in path.name


@pytest.mark.django_db
def test_duration_and_time_are_checked(world, token, clip_bytes, settings):
    assert push(token, clip_bytes, started_at=None).status_code == 400
    assert "started_at" in push(token, clip_bytes, started_at="yesterday").json()["detail"]
    assert push(token, clip_bytes, started_at="2026-13-45T25:00:00+09:00").status_code == 400
    naive = push(token, clip_bytes, started_at="2026-11-24T09:00:00")
    assert naive.status_code == 400 and "time zone" in naive.json()["detail"]
    future = (timezone.now() + dt.timedelta(hours=1)).isoformat()
    assert push(token, clip_bytes, started_at=future).status_code == 400
    # The earliest date there is (a 500 before: the clip's end overflowed) and a stale one.
    month_old = (timezone.now() - dt.timedelta(days=31)).isoformat()
    for ancient in ("0001-01-01T00:00:00+09:00", "1900-01-01T00:00:00+00:00", month_old):
        refused = push(token, clip_bytes, started_at=ancient)
        assert refused.status_code == 400 and "days ago" in refused.json()["detail"], ancient
    settings.EDGE_CLIP_MAX_SECONDS = 1.0
    too_long = push(token, clip_bytes)
    assert too_long.status_code == 400 and "longer than 1 seconds" in too_long.json()["detail"]
    settings.EDGE_CLIP_MAX_SECONDS = 30.0
    settings.EDGE_CLIP_MIN_SECONDS = 5.0
    too_short = push(token, clip_bytes)
    assert too_short.status_code == 400 and "at least 5" in too_short.json()["detail"]
    assert not Segment.objects.exists()


@pytest.mark.django_db
def test_another_clip_for_the_same_start_is_a_conflict_not_a_second_segment(world, token):
    first, other = fixture_clips()[0].read_bytes(), fixture_clips()[1].read_bytes()
    assert push(token, first).status_code == 202
    files = media_files()
    again = push(token, other)
    assert again.status_code == 409 and "already has footage" in again.json()["detail"]
    assert Segment.objects.count() == 1 and media_files() == files


@pytest.mark.django_db
def test_the_same_clip_again_after_a_lost_answer_is_accepted_once(world, token, clip_bytes):
    # The device never saw our 202 (link dropped) and sends the clip again.
    first = push(token, clip_bytes)
    assert first.status_code == 202
    files = media_files()
    retry = push(token, clip_bytes)
    assert retry.status_code == 202, retry.json()
    same = ("segment", "camera", "status", "original_sha256")
    assert {k: retry.json()[k] for k in same} == {k: first.json()[k] for k in same}
    for instant in ("started_at", "ended_at"):
        assert dt.datetime.fromisoformat(retry.json()[instant]) == dt.datetime.fromisoformat(
            first.json()[instant]
        )
    assert Segment.objects.count() == 1 and media_files() == files


@pytest.mark.django_db
def test_a_broker_that_is_down_still_answers_202_and_leaves_the_window_pending(
    world, token, clip_bytes, settings, django_capture_on_commit_callbacks, caplog
):
    # Nothing listens on port 1: the pipeline's Redis calls fail as when Redis is stopped
    # (tests/faults/test_redis_outage.py stops a real one, broker included).
    from detection import inference

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    inference._redis = None
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = push(token, clip_bytes)
    finally:
        inference._redis = None
    assert response.status_code == 202, response.content
    segment = Segment.objects.get(pk=response.json()["segment"])
    assert segment.status == Segment.Status.PENDING and segment.queued_at is not None
    assert "reconciler will queue it again" in caplog.text


@pytest.mark.django_db
def test_only_post_is_offered(world, token):
    client = api_as(None)
    assert client.get(URL, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 405


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_pushed_clip_is_scored_and_alerted_like_an_ingested_window(
    world, active_model, token, clip_bytes, celery_worker, purge_queues, listen
):
    Camera.objects.filter(pk=world.camera_a.pk).update(low_threshold=0.0, high_threshold=0.0001)
    alice = listen(world.alice)
    response = push(
        token, clip_bytes, started_at=(timezone.now() - dt.timedelta(days=3)).isoformat()
    )
    assert response.status_code == 202
    segment_id = response.json()["segment"]
    detection = wait_for(
        lambda: Detection.objects.filter(segment_id=segment_id).first(),
        timeout=90,
        what="the pushed clip's detection",
    )
    assert detection.band == "violent"
    alert = alice.wait(lambda m: m["type"] == "case.alert", timeout=30)
    assert alert["case"]["camera"] == world.camera_a.pk
