"""Bad input through the inference worker's pipeline function (issue #12, "Bad input"): windows
with no people (black), tiny frames, and a truncated file get a score or a clean failure, never a
crash, and stage 2 (pose) reads them too."""

from __future__ import annotations

import datetime as dt
import math
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from detection import inference
from detection.model_versions import model_version_register
from detection.models import Detection, Segment
from detection.pipeline import segment_create, segments_analyse, stage2_score

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media_root")]


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def make_segment(camera, start: dt.datetime, clip: Path) -> Segment:
    with tempfile.TemporaryDirectory() as folder:
        original = Path(folder) / "original.mp4"
        original.write_bytes(clip.read_bytes())
        with transaction.atomic():
            return segment_create(
                camera_id=camera.pk,
                started_at=start,
                ended_at=start + dt.timedelta(seconds=2),
                source=Segment.Source.EDGE,
                original=original,
                motion_score=None,  # not motion-gated: the model must see it
            )


@pytest.fixture
def shipped_cascade(db: None):
    version = model_version_register(artifact_dir=Path(settings.DEFAULT_MODEL_DIR), activate=True)
    assert version.card["schema"] == 2
    return version


def test_black_tiny_and_truncated_windows_get_a_score_or_fail_cleanly(
    world, shipped_cascade, tmp_path
):
    black = write_clip(tmp_path / "black.mp4", [np.zeros((360, 640, 3), np.uint8)] * 20)
    rng = np.random.default_rng(7)
    tiny = write_clip(
        tmp_path / "tiny.mp4",
        [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(20)],
    )
    whole = (
        Path(settings.BASE_DIR) / "tests/fixtures/surveillance-fight/fight/fi044.mp4"
    ).read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(whole[: len(whole) // 2])
    start = timezone.now() - dt.timedelta(days=1)
    segments = {
        name: make_segment(world.camera_b, start + dt.timedelta(seconds=2 * index), clip)
        for index, (name, clip) in enumerate(
            [("black", black), ("tiny", tiny), ("truncated", truncated)]
        )
    }
    for segment in segments.values():
        inference.frames_forget([segment.pk])  # no cached frames: decode the stored original

    detections = segments_analyse(segment_ids=[s.pk for s in segments.values()])

    by_segment = {d.segment_id: d for d in detections}
    for name in ("black", "tiny"):
        detection = by_segment[segments[name].pk]
        assert 0.0 <= detection.score <= 1.0 and math.isfinite(detection.score), name
        assert detection.stage1_score is not None and math.isfinite(detection.stage1_score)
    # A truncated file either still decodes enough frames for a score, or fails cleanly.
    segments["truncated"].refresh_from_db()
    assert segments["truncated"].status in (Segment.Status.ANALYSED, Segment.Status.FAILED)
    assert (segments["truncated"].pk in by_segment) == (
        segments["truncated"].status == Segment.Status.ANALYSED
    )
    assert Detection.objects.count() == len(detections)


def test_stage_two_reads_black_and_tiny_windows_without_crashing(world, shipped_cascade, tmp_path):
    """Whether or not the gate passes them, pose itself must cope: no people, or frames far
    below its 256-px input."""
    black = write_clip(tmp_path / "black.mp4", [np.zeros((360, 640, 3), np.uint8)] * 20)
    tiny = write_clip(tmp_path / "tiny.mp4", [np.full((8, 8, 3), 200, np.uint8)] * 20)
    detector = inference.detector_for(shipped_cascade.artifact_path)
    start = timezone.now() - dt.timedelta(days=1)
    for index, clip in enumerate((black, tiny)):
        segment = make_segment(world.camera_b, start + dt.timedelta(seconds=2 * index), clip)
        score, elapsed_ms = stage2_score(detector, segment)
        assert score is None or (0.0 <= score <= 1.0), clip.name
        assert elapsed_ms >= 0
        fused = detector.fuse(
            detector.score_stage1_clips([np.zeros((20, 64, 64, 3), np.uint8)])[0], score
        )
        assert 0.0 <= fused.fused <= 1.0


def test_an_old_schema_one_version_of_the_same_folder_is_still_served_as_it_was(world, tmp_path):
    """Rows registered before the cascade replaced the shipped CNN in ml/artifacts/default keep
    their schema-1 card: they are served by that CNN alone (the cascade's stage 1, the same
    model.keras), with their own bands, and get no stage-2 score."""
    import json

    from ml.runtime import ViolenceDetector

    folder = Path(settings.DEFAULT_MODEL_DIR)
    old_card = json.loads((folder / "stage1_card.json").read_text(encoding="utf-8"))
    assert old_card.get("schema", 1) == 1
    version = model_version_register(artifact_dir=folder, activate=True)  # the cascade
    version.name = old_card["version"]
    version.card = old_card
    version.low_threshold = old_card["thresholds"]["low"]
    version.high_threshold = old_card["thresholds"]["high"]
    version.save()
    fight = Path(settings.BASE_DIR) / "tests/fixtures/surveillance-fight/fight/fi044.mp4"
    segment = make_segment(world.camera_b, timezone.now() - dt.timedelta(days=1), fight)
    inference.frames_forget([segment.pk])

    [detection] = segments_analyse(segment_ids=[segment.pk])

    detector = inference.detector_for(str(folder), card=old_card)
    assert not detector.card.is_cascade and detector.version == old_card["version"]
    cnn = ViolenceDetector.load(folder)
    frames = inference.frames_decode(fight, spec=cnn.spec)
    assert detection.stage2_score is None and detection.stage2_ms is None
    assert detection.score == pytest.approx(cnn.score_clip(frames), abs=1e-5)
    assert detection.stage1_score == pytest.approx(detection.score, abs=1e-9)
