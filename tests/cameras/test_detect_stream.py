"""A camera with a detect stream (issue #14 item 1): the main stream (640x360) is recorded byte
for byte without being decoded, the detect stream (320x180 of the same clip) gives the analysis
frames, and when the detect stream is missing or ends the camera still records, analyses the
main stream instead and says so in its status detail.

File sources, played once by the reader as a camera's session (paced, in real time).
"""

from __future__ import annotations

import threading
from pathlib import Path

import av
import pytest

from bench.clips import encode_clip, fixture_clips
from cameras.ingest.decoding import DecodeOptions, IngestTotals
from cameras.ingest.reader import CameraConfig, CameraReader, SessionWindow, StatusReport
from cameras.sources import parse_source_uri
from cameras.status_details import DETECT_STREAM_UNAVAILABLE, RECEIVING_VIDEO
from ml.preprocess import InputSpec

pytestmark = pytest.mark.slow

SPEC = InputSpec()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same 6-s footage as a camera's main stream and as its detect sub-stream."""
    folder = tmp_path_factory.mktemp("detect")
    sources = fixture_clips()[:3]
    return {
        "main": encode_clip(sources, folder / "main.mp4"),
        "detect": encode_clip(sources, folder / "detect.mp4", width=320, height=180),
        "short": encode_clip(sources[:1], folder / "short.mp4", width=320, height=180),
    }


class Run:
    def __init__(self, main: Path, analysis_uri: str = "") -> None:
        self.windows: list[SessionWindow] = []
        self.reports: list[StatusReport] = []
        self.config = CameraConfig(
            camera_id=7,
            source_uri=str(main),
            analysis_fps=SPEC.fps,
            window_seconds=2.0,
            window_overlap_seconds=0.0,
            frame_height=SPEC.height,
            frame_width=SPEC.width,
            analysis_uri=analysis_uri,
        )
        self.reader = CameraReader(
            self.config,
            on_window=lambda _, window: self.windows.append(window),
            on_status=lambda _, report: self.reports.append(report),
            backoff_initial=0.2,
            read_timeout=3.0,
        )

    def play_once(self) -> Run:
        """One session of the main clip, in the test's thread (the reader's loop replays it)."""
        source = parse_source_uri(self.config.source_uri)
        self.reader._session(source, Path(source.uri))
        return self


def main_packets(path: Path) -> set[tuple[int | None, bytes]]:
    """The main file's packets as a demuxer gives them: what a remux must store unchanged."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return {(packet.pts, bytes(packet)) for packet in container.demux(stream) if packet.size}


@pytest.fixture(scope="module")
def single(clips: dict[str, Path]) -> Run:
    return Run(clips["main"]).play_once()


def test_the_detect_stream_gives_the_frames_and_the_main_stream_the_footage(clips, single):
    run = Run(clips["main"], str(clips["detect"])).play_once()

    assert len(single.windows) == 3  # 6 s of footage in 2-s windows
    assert [len(w.window.frames) for w in single.windows[:2]] == [20, 20]  # one per tick
    assert len(run.windows) == len(single.windows)
    feed = run.reader.detect_feed
    assert feed is not None
    assert feed.main_packets_decoded == 0  # the main stream was only demuxed
    assert feed.frames_from_detect > 0 and not feed.fallback
    recorded = main_packets(clips["main"])
    for got, want in zip(run.windows, single.windows, strict=True):
        # The original: the main stream's own packets, the same as without a detect stream.
        assert [(p.pts, p.data) for p in got.window.packets] == [
            (p.pts, p.data) for p in want.window.packets
        ]
        assert {(p.pts, p.data) for p in got.window.packets} <= recorded
        assert got.info.width == 640 and got.info.height == 360
        # The analysis frames: the detect stream's, at the model's size, one per tick.
        assert len(got.window.frames) == len(want.window.frames)
        assert got.window.source_frames == want.window.source_frames
        assert all(frame.shape == (SPEC.height, SPEC.width, 3) for frame in got.window.frames)
        assert abs(got.window.start - want.window.start) < 1e-6
    # Frames come from the detect stream: they differ from the main stream's (a 320x180
    # source shrinks to 64 px differently from a 640x360 one), but show the same scene.
    first, reference = run.windows[1].window.frames[5], single.windows[1].window.frames[5]
    assert (first != reference).any()
    assert abs(float(first.mean()) - float(reference.mean())) < 8
    assert run.reports[0].detail == RECEIVING_VIDEO


def test_the_stored_original_is_a_remux_of_the_main_stream(clips, tmp_path):
    from cameras.ingest.media import remux_packets

    run = Run(clips["main"], str(clips["detect"]))
    stored: list[tuple[Path, SessionWindow]] = []

    def store(_: CameraConfig, window: SessionWindow) -> None:
        # As the pipeline stores it: remuxed while the reader's session is open.
        target = tmp_path / f"original-{len(stored)}.mp4"
        remux_packets(window.window.packets, window.info, target)
        stored.append((target, window))

    run.reader.on_window = store
    run.play_once()
    assert len(stored) == 3
    for target, window in stored:
        with av.open(str(target)) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.width, stream.codec_context.height) == (640, 360)
            data = [bytes(p) for p in container.demux(stream) if p.size]
        assert data == [p.data for p in window.window.packets]


def test_without_its_detect_stream_the_camera_records_and_says_why(clips, single, tmp_path):
    missing = tmp_path / "no-such-detect.mp4"
    run = Run(clips["main"], str(missing)).play_once()

    assert len(run.windows) == len(single.windows)
    for got, want in zip(run.windows, single.windows, strict=True):
        assert [p.data for p in got.window.packets] == [p.data for p in want.window.packets]
        assert len(got.window.frames) == len(want.window.frames)
    feed = run.reader.detect_feed
    assert feed is not None and feed.fallback and feed.main_packets_decoded > 0
    online = [r for r in run.reports if r.status == "online"]
    assert online and online[0].detail.startswith(DETECT_STREAM_UNAVAILABLE)
    assert "does not exist" in online[0].detail


def test_a_detect_stream_that_ends_early_hands_over_to_the_main_stream(clips, single):
    run = Run(clips["main"], str(clips["short"])).play_once()

    assert len(run.windows) == len(single.windows)
    feed = run.reader.detect_feed
    assert feed is not None and feed.frames_from_detect > 0 and feed.main_packets_decoded > 0
    # The first window is the detect stream's; the main stream filled in from its next keyframe.
    assert len(run.windows[0].window.frames) == 20
    assert all(len(w.window.frames) >= 10 for w in run.windows)
    assert any(r.detail.startswith(DETECT_STREAM_UNAVAILABLE) for r in run.reports)


def test_credentials_of_a_dead_detect_stream_never_reach_the_status(clips):
    uri = "rtsp://admin:s3cret@127.0.0.1:9/detect"
    run = Run(clips["main"], uri).play_once()

    assert len(run.windows) == 3
    details = " ".join(r.detail for r in run.reports)
    assert DETECT_STREAM_UNAVAILABLE in details
    assert "rtsp://***@127.0.0.1:9/detect" in details
    assert "s3cret" not in details


def test_the_reader_thread_stops_its_detect_thread(clips):
    run = Run(clips["main"], str(clips["detect"]))
    got = threading.Event()
    run.reader.on_window = lambda _, window: got.set()
    run.reader.start()
    try:
        assert got.wait(20), "no window"
    finally:
        run.reader.stop()
        run.reader.join(10)
    assert not run.reader.is_alive()
    feed = run.reader.detect_feed
    assert feed is not None and feed.frames_from_detect > 0
    thread = feed.stream
    if thread is not None:  # stopped, not joined, when the reader stopped mid-clip
        thread.join(5)
        assert not thread.is_alive()


def test_a_detect_clip_that_appears_serves_from_the_next_replay(clips, tmp_path):
    """A replayed pair retries at the next play of the main clip, and the detail clears."""
    import shutil

    later = tmp_path / "later.mp4"
    run = Run(clips["main"], str(later)).play_once()
    assert run.reports[-1].detail.startswith(DETECT_STREAM_UNAVAILABLE)
    shutil.copy(clips["detect"], later)
    windows_before = len(run.windows)
    run.play_once()
    feed = run.reader.detect_feed
    assert feed is not None and not feed.fallback and feed.main_packets_decoded == 0
    assert run.reports[-1].detail == RECEIVING_VIDEO
    assert len(run.windows) == 2 * windows_before


def test_a_shard_behind_stops_decoding_the_detect_stream_and_resumes_at_a_keyframe(tmp_path):
    """Issue #14: with detect streams, decoding them is the shard's cost, so it is what gives
    way when the shard's window writer falls behind (before, only the main stream's decoding
    did, and 64 cameras with detect streams starved the writer: windows never stored)."""
    sources = fixture_clips()[:5]
    main = encode_clip(sources, tmp_path / "main10.mp4")
    detect = encode_clip(sources, tmp_path / "detect10.mp4", width=320, height=180)
    run = Run(main, str(detect))
    run.reader.totals = totals = IngestTotals()
    # The writer is 5 s behind from the first window's hand-over until the second's.
    run.reader.storage_lag = lambda: 5.0 if len(run.windows) == 1 else 0.0
    run.reader.decode_options = DecodeOptions(motion_gate=False, shed_after=2.0, shed_resume=0.5)
    run.play_once()

    feed = run.reader.detect_feed
    assert feed is not None and not feed.fallback, "shedding is not the detect stream failing"
    assert feed.main_packets_decoded == 0
    assert feed.frames_shed > 0
    # The shard's counters (the bench's `ingest_stats`) hold the detect stream's decoding:
    # every detect packet was decoded or, for capacity, not.
    counted = totals.snapshot()
    assert counted["frames_shed"] == counted["frames_not_decoded"] == feed.frames_shed
    assert counted["frames_decoded"] > 0
    assert counted["packets"] == counted["frames_decoded"] + counted["frames_not_decoded"]
    shed = [closed.shed for closed in run.windows]
    assert len(shed) == 5
    # The second window was shed; the third too, as decoding waits for a keyframe after the
    # lag ends; then the detect stream serves again.
    assert shed[0] is False and shed[1] is True and shed[-1] is False, shed
    assert run.reader.windows_shed == sum(shed)
    for closed in run.windows:
        if closed.shed:
            assert closed.window.frames == [], "no half set of analysis frames"
    assert [len(w.window.frames) for w in run.windows if not w.shed][:-1] == [20] * (
        len(shed) - sum(shed) - 1
    )
    # Every main packet was recorded, shed or not.
    recorded = {(p.pts, p.data) for closed in run.windows for p in closed.window.packets}
    assert recorded == main_packets(main)
    assert all(r.detail == RECEIVING_VIDEO for r in run.reports if r.status == "online")
