"""No audio, provably (PIPA Art. 25(5)): a camera or edge device that sends a sound track never
gets it into storage. The fixture clip has an H.264 video and an AAC audio stream."""

from __future__ import annotations

import datetime as dt
import hashlib
import zipfile
from pathlib import Path

import av
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from cameras.ingest.media import audio_stream_count, remux_file, streams_besides_video
from cameras.ingest.reader import CameraConfig, CameraReader, SessionWindow
from cameras.services import camera_issue_upload_token
from detection.models import Segment
from detection.pipeline import store_ingested_window
from tests.conftest import World, api_as
from tests.support.audio import CLIP_WITH_AUDIO, video_packet_digest
from tests.support.footage import client_as
from tests.support.live import wait_for

CLIP = CLIP_WITH_AUDIO


def test_the_fixture_really_has_a_sound_track():
    # Without this, every test below would pass for the wrong reason.
    assert audio_stream_count(CLIP) == 1
    assert streams_besides_video(CLIP) == 1


def test_remuxing_a_file_keeps_the_video_bitstream_and_drops_the_audio(tmp_path: Path):
    target = tmp_path / "video.mp4"
    remux_file(CLIP, target)
    assert audio_stream_count(target) == 0
    assert streams_besides_video(target) == 0
    assert video_packet_digest(target) == video_packet_digest(CLIP)


@pytest.mark.django_db
@pytest.mark.usefixtures("media_root")
def test_an_edge_upload_with_audio_stores_video_only(
    world: World, django_capture_on_commit_callbacks
):
    token = camera_issue_upload_token(camera=world.camera_a, actor=world.alice)
    started = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(microsecond=0)
    with django_capture_on_commit_callbacks(execute=False):
        response = api_as(None).post(
            "/api/edge/clips/",
            {
                "clip": SimpleUploadedFile("box.mp4", CLIP.read_bytes(), content_type="video/mp4"),
                "started_at": started.isoformat(),
            },
            format="multipart",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
    assert response.status_code == 202, response.json()
    segment = Segment.objects.get(pk=response.json()["segment"])
    for stored in (Path(segment.original.path), Path(segment.preview.path)):
        assert audio_stream_count(stored) == 0, stored
        assert streams_besides_video(stored) == 0, stored
    # The evidence is still the device's own video bitstream, and its stored hash is the file's.
    original = Path(segment.original.path)
    assert video_packet_digest(original) == video_packet_digest(CLIP)
    assert segment.original_sha256 == hashlib.sha256(original.read_bytes()).hexdigest()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("media_root")
def test_a_camera_stream_with_audio_stores_windows_without_audio(world: World, settings):
    # Every window is stored as still, so none is queued for the model: this test is about
    # what reaches the disk.
    settings.MOTION_GATE_THRESHOLD = 1e9
    config = CameraConfig(
        camera_id=world.camera_a.pk,
        source_uri=str(CLIP),
        analysis_fps=10.0,
        window_seconds=1.0,
        window_overlap_seconds=0.0,
        frame_height=64,
        frame_width=64,
    )
    stored: list[int] = []
    failures: list[BaseException] = []

    def store(config: CameraConfig, closed: SessionWindow) -> None:
        # As the ingest command wires it: the reader stores each window while its stream is
        # open (the stream is the remux's template).
        try:
            segment_id = store_ingested_window(config, closed)
        except BaseException as error:  # reported to the test thread below
            failures.append(error)
            raise
        if segment_id is not None:
            stored.append(segment_id)

    reader = CameraReader(
        config, on_window=store, on_status=lambda *_: None, on_exit=lambda: connection.close()
    )
    reader.start()
    try:
        wait_for(lambda: len(stored) >= 2 or failures, timeout=20, what="two stored windows")
    finally:
        reader.stop()
        reader.join(timeout=10)
    assert not failures, failures
    for segment in Segment.objects.filter(pk__in=stored):
        for path in {Path(segment.original.path), Path(segment.preview.path)}:
            assert audio_stream_count(path) == 0, path
            with av.open(str(path)) as container:
                assert len(container.streams) == 1 and container.streams.video


@pytest.mark.django_db
def test_the_camera_page_says_audio_is_not_recorded(world: World):
    page = client_as(world.alice).get(f"/sites/cameras/{world.camera_a.pk}/").content.decode()
    assert "Audio is not recorded" in page and "음성은 녹음하지 않습니다" in page
    assert "개인정보 보호법 제25조 제5항" in page


@pytest.mark.django_db
@pytest.mark.usefixtures("media_root")
def test_evidence_packages_of_footage_sent_with_audio_carry_no_audio(
    world: World, tmp_path: Path, django_capture_on_commit_callbacks
):
    from reports.services import evidence_package_create

    token = camera_issue_upload_token(camera=world.camera_a, actor=world.alice)
    started = world.violent_case_a.started_at
    with django_capture_on_commit_callbacks(execute=False):
        response = api_as(None).post(
            "/api/edge/clips/",
            {
                "clip": SimpleUploadedFile("box.mp4", CLIP.read_bytes(), content_type="video/mp4"),
                "started_at": started.isoformat(),
            },
            format="multipart",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
    assert response.status_code == 202, response.json()
    world.violent_case_a.segments.add(response.json()["segment"])

    package = evidence_package_create(report=world.report_a, actor=world.lee)

    videos = 0
    with zipfile.ZipFile(package.file.path) as archive:
        for name in archive.namelist():
            if Path(name).suffix in {".mp4", ".mkv"}:
                target = tmp_path / Path(name).name
                target.write_bytes(archive.read(name))
                assert audio_stream_count(target) == 0, name
                videos += 1
    assert videos >= 2  # the original and its preview at least
