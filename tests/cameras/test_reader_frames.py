"""The camera reader keeps the frames `ml.video.decode_frames` gives the same file (one frame
rule, `ml.frames`): a fast source's frames dropped, a slow source's repeated, none lost at the
clip's end."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from cameras.ingest.reader import CameraConfig, CameraReader, SessionWindow
from ml.input_spec import RESIZE_MODES
from ml.preprocess import InputSpec
from ml.video import decode_frames

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures/surveillance-fight/fight/fi044.mp4"


def slow_clip(
    path: Path, fps: int = 5, seconds: float = 3.0, options: dict[str, str] | None = None
) -> Path:
    """A 5-fps clip whose every frame differs (a bar moving across, then again from the
    left), so repeats are visible. `options`: the encoder's (x264's)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps, options=options or {})
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        stream.time_base = Fraction(1, fps)
        for index in range(int(fps * seconds)):
            image = np.zeros((180, 320, 3), np.uint8)
            image[:, (index * 20) % 320 :][:, :20] = 255
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def first_window(
    clip: Path, spec: InputSpec, *, window_seconds: float = 4.0, start_delay: float = 0.0
) -> SessionWindow:
    """The reader's first window of `clip`; by default a window longer than the clip, so the
    clip's end closes it."""
    config = CameraConfig(
        camera_id=1,
        source_uri=str(clip),
        analysis_fps=spec.fps,
        window_seconds=window_seconds,
        window_overlap_seconds=0.0,
        frame_height=spec.height,
        frame_width=spec.width,
        frame_resize=spec.resize,
    )
    windows: list[SessionWindow] = []
    got = threading.Event()

    def on_window(_: CameraConfig, window: SessionWindow) -> None:
        windows.append(window)
        got.set()

    reader = CameraReader(
        config, on_window=on_window, on_status=lambda *_: None, start_delay=start_delay
    )
    reader.start()
    try:
        assert got.wait(30), "the reader closed no window"
    finally:
        reader.stop()
        reader.join(10)
    return windows[0]


@pytest.mark.parametrize("resize", RESIZE_MODES)
@pytest.mark.parametrize("source", ["fast-30fps-fixture", "slow-5fps"])
def test_a_reader_window_holds_the_frames_ml_video_gives_the_file(tmp_path, source, resize):
    clip = FIXTURE if source.startswith("fast") else slow_clip(tmp_path / "slow.mp4")
    spec = InputSpec(resize=resize)
    expected = decode_frames(clip, fps=spec.fps, spec=spec)

    window = first_window(clip, spec).window

    assert len(window.frames) == len(expected)
    for got, want in zip(window.frames, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    if source == "slow-5fps":
        # Frames at 0, 0.2, ..., 2.8 s fill the ticks 0, 0.1, ..., 2.8 s: each after the first
        # twice (29 frames), where the old reader dropped to one per source frame (15).
        assert len(window.frames) == 29 and window.source_frames == 15
        np.testing.assert_array_equal(window.frames[1], window.frames[2])
        assert not np.array_equal(window.frames[0], window.frames[1])


@pytest.mark.parametrize("detect_stream", [False, True])
def test_a_reader_stopped_mid_window_stores_what_the_camera_sent_of_it(tmp_path, detect_stream):
    """A restart or a deploy stops the readers: the open window is footage that exists nowhere
    else, so it is stored (shorter than a full window), not dropped."""
    # Encoded as a camera does (no B-frames, no lookahead): its packets arrive when its frames
    # are due, so a paced reader's position in it follows the wall clock.
    clip = slow_clip(tmp_path / "long.mp4", fps=10, seconds=8.0, options={"tune": "zerolatency"})
    spec = InputSpec()
    config = CameraConfig(
        camera_id=1,
        source_uri=str(clip),
        analysis_fps=spec.fps,
        window_seconds=2.0,
        window_overlap_seconds=0.0,
        frame_height=spec.height,
        frame_width=spec.width,
        analysis_uri=str(clip) if detect_stream else "",
    )
    windows: list[SessionWindow] = []
    arrived_after_stop: list[bool] = []
    first = threading.Event()
    stopping = threading.Event()

    def on_window(_: CameraConfig, window: SessionWindow) -> None:
        windows.append(window)
        arrived_after_stop.append(stopping.is_set())
        first.set()

    reader = CameraReader(config, on_window=on_window, on_status=lambda *_: None)
    reader.start()
    try:
        assert first.wait(30), "the reader closed no window"
        # Played at real time: stop about 1.3 s into the second window (a full one is 2 s).
        threading.Event().wait(1.3)
    finally:
        stopping.set()
        reader.stop()
        reader.join(15)
    assert not reader.is_alive()
    spans = [(w.window.start, w.window.end) for w in windows]
    assert len(windows) == 2, spans
    assert arrived_after_stop == [False, True], spans
    full, partial = windows
    assert partial.window.start == pytest.approx(full.window.end, abs=0.11)
    # At least the half window a stored window needs, and less than a whole one.
    assert 1.0 <= partial.window.end - partial.window.start < 2.0, spans
    assert partial.window.packets
