from __future__ import annotations

import json
import os

import numpy as np
import pytest

from ml.cache import cached_clip
from ml.datasets import scan_dataset
from ml.evaluate import evaluate
from ml.preprocess import InputSpec, clip_windows
from ml.runtime import Thresholds
from ml.train import load_clips
from tests.ml.conftest import copy_clip

HOSTILE_NAME = "fi 'quoted' \"dq\" ünïcødé 拳 $(rm -rf) ;.mp4"


class FakeDetector:
    """Scores windows by their motion energy: exercises evaluate without a trained model."""

    spec = InputSpec(frames=4, height=32, width=32)
    thresholds = Thresholds(low=0.2, high=0.5)
    version = "fake"

    def predict(self, windows):
        motion = np.abs(np.asarray(windows)[..., 3:]).mean(axis=(1, 2, 3, 4))
        return np.clip(motion * 20, 0, 1).astype(np.float32)


@pytest.fixture()
def messy_dataset(tmp_path, fight_clip, calm_clip):
    root = tmp_path / "messy"
    good_fight = copy_clip(fight_clip, root / "fight" / "good.mp4")
    copy_clip(calm_clip, root / "noFight" / "good.mp4")
    copy_clip(fight_clip, root / "fight" / HOSTILE_NAME)
    payload = good_fight.read_bytes()
    (root / "fight" / "corrupt.mp4").write_bytes(
        bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8))
    )
    (root / "fight" / "truncated.mp4").write_bytes(payload[: len(payload) // 20])
    (root / "noFight" / "empty.mp4").write_bytes(b"")
    (root / "noFight" / "text.mp4").write_text("this is a text file, not a video\n")
    (root / "noFight" / "bad 'name' ü.mp4").write_bytes(b"\x00\x01garbage")
    return root


BAD_FILES = {"corrupt.mp4", "truncated.mp4", "empty.mp4", "text.mp4", "bad 'name' ü.mp4"}


def test_evaluate_skips_and_counts_every_bad_file(messy_dataset):
    with pytest.warns(UserWarning):
        report = evaluate(messy_dataset, FakeDetector(), progress=False)
    skipped_names = {os.path.basename(item["path"]) for item in report["skipped_files"]}
    assert skipped_names == BAD_FILES
    assert report["skipped"] == len(BAD_FILES)
    assert report["n"] == 3  # two good clips and the good clip with a hostile name
    assert any(HOSTILE_NAME in item["clip"] for item in report["clips"])
    json.dumps(report)  # the report must stay serialisable with odd file names in it


def write_long_clip(path, *, width, height, fps, seconds):
    """A synthetic H.264 clip of a bright square crossing a textured scene."""
    import av

    rng = np.random.default_rng(1)
    scene = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    scene = scene.repeat(8, axis=0).repeat(8, axis=1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for index in range(fps * seconds):
            image = scene.copy()
            left = (index * 17) % (width - 160)
            image[100:260, left : left + 160] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_evaluate_holds_a_long_high_resolution_clip_at_model_size(tmp_path, monkeypatch):
    # Huge input: 40 s of 720p. Evaluate used to keep every decoded frame at full size
    # (2.8 MB each; 2 minutes of 720p peaked at 4.8 GB), enough for a long file to exhaust
    # memory. Frames must be resized as they are decoded, with the same scores as before.
    import ml.evaluate
    from ml.video import decode_frames as real_decode

    clip = tmp_path / "long" / "fight" / "long.mp4"
    clip.parent.mkdir(parents=True)
    write_long_clip(clip, width=1280, height=720, fps=10, seconds=40)
    detector = FakeDetector()
    held: list[tuple[int, ...]] = []

    def recording_decode(*args, **kwargs):
        frames = real_decode(*args, **kwargs)
        held.extend({f.shape for f in frames})
        return frames

    monkeypatch.setattr(ml.evaluate, "decode_frames", recording_decode)
    report = evaluate(tmp_path / "long", detector, progress=False)
    assert report["n"] == 1 and report["skipped"] == 0
    assert set(held) == {(32, 32, 3)}
    full_size = real_decode(clip, fps=detector.spec.fps)
    assert full_size[0].shape == (720, 1280, 3) and len(full_size) == 400
    expected = float(detector.predict(clip_windows(full_size, detector.spec)).mean())
    assert report["clips"][0]["score"] == pytest.approx(expected, abs=1e-5)


def test_training_loader_skips_and_counts_every_bad_file(messy_dataset, tmp_path):
    scan = scan_dataset(messy_dataset)
    with pytest.warns(UserWarning) as caught:
        clips = load_clips(
            scan, InputSpec(frames=4, height=32, width=32), tmp_path / "cache", progress=False
        )
    assert {c.record.path.name for c in clips} == {"good.mp4", HOSTILE_NAME}
    assert {os.path.basename(p) for p, _ in scan.skipped} == BAD_FILES
    warned = " ".join(str(w.message) for w in caught)
    for name in BAD_FILES:
        assert name in warned


def test_cache_round_trip_is_exact(fight_clip, tmp_path):
    spec = InputSpec(frames=4, height=32, width=32)
    first = cached_clip(fight_clip, spec, tmp_path)
    second = cached_clip(fight_clip, spec, tmp_path)
    assert first.dtype == np.uint8 and first.shape[1:] == (32, 32, 3)
    np.testing.assert_array_equal(first, second)
    assert len(list((tmp_path / "clips").glob("*.npy"))) == 1
