from __future__ import annotations

import numpy as np
import pytest

from ml.cache import decode_clip
from ml.preprocess import (
    InputSpec,
    clip_window_batches,
    clip_windows,
    preprocess_window,
    resize_frame,
    sample_indices,
    window_starts,
)
from ml.video import VideoDecodeError, decode_frames


def random_frames(count: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


@pytest.mark.parametrize(
    ("count", "height", "width"), [(2, 240, 426), (16, 1080, 1920), (45, 37, 91)]
)
def test_preprocess_shape_dtype_and_range_for_any_size_and_count(count, height, width):
    spec = InputSpec()
    window = preprocess_window(random_frames(count, height, width), spec)
    assert window.shape == spec.shape
    assert window.dtype == np.float32
    rgb, diff = window[..., :3], window[..., 3:]
    assert rgb.min() >= -1.0 and rgb.max() <= 1.0
    assert diff.min() >= -1.0 and diff.max() <= 1.0


def test_preprocess_is_deterministic_and_diff_channels_are_frame_differences():
    spec = InputSpec(frames=4, height=32, width=32, appearance="centred")
    frames = random_frames(9, 120, 160)
    first = preprocess_window(frames, spec)
    second = preprocess_window([f.copy() for f in frames], spec)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(
        first[1:, ..., 3:],
        np.clip((first[1:, ..., :3] - first[:-1, ..., :3]) * spec.diff_scale, -1, 1),
        atol=1e-5,
    )


def test_static_scene_vanishes_and_a_moving_object_remains():
    spec = InputSpec(frames=4, height=32, width=32)
    still = random_frames(1, 100, 100)[0]
    assert np.abs(preprocess_window([still] * 6, spec)).max() < 1e-6  # float rounding of the mean
    moving = []
    for step in range(6):
        frame = still.copy()
        frame[40:60, 10 + 12 * step : 30 + 12 * step] = 255
        moving.append(frame)
    window = preprocess_window(moving, spec)
    assert np.abs(window[..., :3]).max() > 0.3
    assert np.abs(window[..., 3:]).max() > 0.3
    centred = preprocess_window(
        [still] * 6, InputSpec(frames=4, height=32, width=32, appearance="centred")
    )
    assert np.abs(centred[..., 3:]).max() == 0.0 and centred[..., :3].std() > 0.02


def test_appearance_and_motion_sit_side_by_side_as_concatenate_puts_them():
    from ml.preprocess import _channels_side_by_side

    rng = np.random.default_rng(3)
    first = rng.random((4, 5, 7, 3), dtype=np.float32)
    second = rng.random((4, 5, 7, 3), dtype=np.float32)
    expected = np.concatenate([first, second], axis=-1)
    np.testing.assert_array_equal(_channels_side_by_side(first, second), expected)
    # Views that are not contiguous (a reversed time axis), float64, and shapes the item
    # trick cannot take all come out as concatenate makes them.
    np.testing.assert_array_equal(_channels_side_by_side(first[::-1], second[::-1]), expected[::-1])
    np.testing.assert_array_equal(
        _channels_side_by_side(first.astype(np.float64), second), expected
    )
    four = rng.random((2, 3, 4), dtype=np.float32)
    np.testing.assert_array_equal(
        _channels_side_by_side(four, four), np.concatenate([four, four], axis=-1)
    )


def test_unknown_appearance_mode_is_rejected():
    with pytest.raises(ValueError, match="appearance"):
        preprocess_window(random_frames(3, 8, 8), InputSpec(appearance="sepia"))


def test_preprocess_rejects_too_few_or_malformed_frames():
    spec = InputSpec()
    with pytest.raises(ValueError, match="at least 2"):
        preprocess_window(random_frames(1, 10, 10), spec)
    with pytest.raises(ValueError, match="RGB"):
        preprocess_window([np.zeros((10, 10), np.uint8)] * 3, spec)


def test_sample_indices_cover_the_window_uniformly():
    assert sample_indices(17, 9).tolist() == [0, 2, 4, 6, 8, 10, 12, 14, 16]
    assert sample_indices(3, 5).tolist() == [0, 0, 1, 2, 2]


def test_windows_cover_the_whole_clip():
    spec = InputSpec(fps=10, window_seconds=1.6)
    assert window_starts(10, spec) == [0]
    starts = window_starts(47, spec)
    assert starts[0] == 0 and starts[-1] == 47 - spec.window_frames
    windows = clip_windows(random_frames(30, 64, 64), spec)
    assert windows.shape == (len(window_starts(30, spec)), *spec.shape)


def test_cached_model_size_frames_give_the_same_window_as_full_size_frames(fight_clip):
    # Training cuts windows from frames resized once at decode time; live inference resizes
    # inside preprocess. Both must feed the model identical tensors.
    spec = InputSpec()
    full = decode_frames(fight_clip, fps=spec.fps)
    small = decode_clip(fight_clip, spec)
    window = slice(0, spec.window_frames)
    np.testing.assert_array_equal(
        preprocess_window(full[window], spec), preprocess_window(small[window], spec)
    )


def test_decode_applies_the_transform_to_every_kept_frame(fight_clip):
    spec = InputSpec()
    full = decode_frames(fight_clip, fps=spec.fps)
    small = decode_frames(fight_clip, fps=spec.fps, transform=lambda f: resize_frame(f, spec))
    assert len(small) == len(full)
    assert {f.shape for f in small} == {(spec.height, spec.width, 3)}
    for before, after in zip(full, small, strict=True):
        np.testing.assert_array_equal(resize_frame(before, spec), after)
    np.testing.assert_array_equal(decode_clip(fight_clip, spec), np.stack(small))


def test_clip_window_batches_are_clip_windows_in_order():
    spec = InputSpec(frames=4, height=32, width=32)
    frames = random_frames(60, 48, 64)
    starts = window_starts(len(frames), spec)
    expected = np.stack(
        [preprocess_window(frames[s : s + spec.window_frames], spec) for s in starts]
    )
    batches = list(clip_window_batches(frames, spec, batch_size=4))
    assert [len(b) for b in batches] == [4] * (len(starts) // 4) + (
        [len(starts) % 4] if len(starts) % 4 else []
    )
    np.testing.assert_array_equal(np.concatenate(batches), expected)
    np.testing.assert_array_equal(clip_windows(frames, spec), expected)
    with pytest.raises(ValueError, match="batch_size"):
        next(clip_window_batches(frames, spec, batch_size=0))


def test_decode_resamples_to_requested_fps(fight_clip):
    native = decode_frames(fight_clip)
    at_ten = decode_frames(fight_clip, fps=10)
    assert native[0].dtype == np.uint8 and native[0].ndim == 3 and native[0].shape[2] == 3
    assert len(at_ten) < len(native)
    assert abs(len(at_ten) - 20) <= 3  # the fixture clips last about two seconds
    assert len(decode_frames(fight_clip, fps=10, max_seconds=1.0)) == 10


def test_decode_raises_clear_error_for_non_video(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("definitely not a video\n")
    with pytest.raises(VideoDecodeError, match=r"notes\.mp4"):
        decode_frames(text)
    with pytest.raises(VideoDecodeError, match="no such file"):
        decode_frames(tmp_path / "missing.mp4")


FLOW_SPEC = InputSpec(frames=6, height=48, width=48, motion="flow")


def moving_square(count: int, step: int, size: int = 48) -> list[np.ndarray]:
    """A bright square sliding right by ``step`` pixels per frame on a textured still background."""
    background = np.random.default_rng(1).integers(0, 80, (size, size, 3), dtype=np.uint8)
    frames = []
    for index in range(count):
        frame = background.copy()
        left = 6 + step * index
        frame[16:32, left : left + 12] = 220
        frames.append(frame)
    return frames


def test_flow_window_shape_dtype_and_range():
    window = preprocess_window(random_frames(11, 240, 426), FLOW_SPEC)
    assert window.shape == FLOW_SPEC.shape
    assert window.dtype == np.float32
    flow, magnitude = window[..., 3:5], window[..., 5]
    assert flow.min() >= -1.0 and flow.max() <= 1.0
    assert magnitude.min() >= 0.0 and magnitude.max() <= 1.0


def test_flow_is_deterministic():
    frames = moving_square(7, 3)
    first = preprocess_window(frames, FLOW_SPEC)
    second = preprocess_window([f.copy() for f in frames], FLOW_SPEC)
    np.testing.assert_array_equal(first, second)


def test_still_scene_gives_near_zero_flow():
    still = random_frames(1, 48, 48)[0]
    window = preprocess_window([still] * 7, FLOW_SPEC)
    # Farneback leaves sub-pixel residue at the borders of pure noise; nothing like motion.
    assert np.abs(window[..., 3:]).mean() < 1e-3
    assert np.abs(window[..., 3:]).max() < 0.05


def test_flow_follows_the_direction_of_motion():
    window = preprocess_window(moving_square(7, 3), FLOW_SPEC)
    on_square = window[:, 18:30, 12:24]
    # Rightwards: dx clearly positive on the object, dy about zero, magnitude follows dx.
    assert on_square[..., 3].mean() > 0.2
    assert abs(on_square[..., 4].mean()) < 0.1
    assert on_square[..., 5].mean() > 0.2
    mirrored = preprocess_window([f[:, ::-1] for f in moving_square(7, 3)], FLOW_SPEC)
    assert mirrored[:, 18:30, 24:36, 3].mean() < -0.2


def test_old_cards_without_motion_keep_frame_differences():
    old_card_spec = {
        "frames": 12,
        "height": 64,
        "width": 64,
        "channels": 6,
        "fps": 10.0,
        "window_seconds": 1.6,
        "diff_scale": 4.0,
        "appearance": "foreground",
    }
    spec = InputSpec.from_dict(old_card_spec)
    assert spec.motion == "diff"
    assert InputSpec.from_dict(InputSpec(motion="flow").to_dict()).motion == "flow"
    frames = random_frames(9, 64, 64)
    window = preprocess_window(frames, spec)
    chosen = sample_indices(len(frames), spec.frames + 1)
    small = np.stack([frames[int(i)] for i in chosen]).astype(np.float32) / 255.0
    expected = np.clip((small[1:] - small[:-1]) * spec.diff_scale, -1.0, 1.0)
    np.testing.assert_allclose(window[..., 3:], expected, atol=1e-6)


def test_unknown_motion_mode_is_rejected():
    with pytest.raises(ValueError, match="motion"):
        preprocess_window(random_frames(3, 8, 8), InputSpec(motion="sparkles"))


def test_a_model_is_served_frames_shrunk_by_its_own_rule(fight_clip, tmp_path):
    """InputSpec.resize: the card says how training made its frames; every path follows it."""
    import av

    from ml.cache import cached_clip
    from ml.input_spec import RESIZE_MODES
    from ml.video import model_frame

    with av.open(str(fight_clip)) as container:
        frame = next(container.decode(video=0))
        opencv_spec, ffmpeg_spec = (InputSpec(resize=mode) for mode in RESIZE_MODES)
        opencv, ffmpeg = model_frame(frame, opencv_spec), model_frame(frame, ffmpeg_spec)
        np.testing.assert_array_equal(
            opencv, resize_frame(frame.to_ndarray(format="rgb24"), opencv_spec)
        )
        direct = frame.reformat(width=64, height=64, format="rgb24", interpolation="AREA")
        np.testing.assert_array_equal(ffmpeg, direct.to_ndarray())
    assert opencv.shape == ffmpeg.shape == (64, 64, 3)
    difference = np.abs(opencv.astype(int) - ffmpeg.astype(int))
    assert 0 < difference.mean() < 3, "other pixels, the same picture"

    # Training's cache keeps each rule's frames apart, and each equals a plain decode.
    for spec in (opencv_spec, ffmpeg_spec):
        cached = cached_clip(fight_clip, spec, tmp_path)
        np.testing.assert_array_equal(cached, decode_clip(fight_clip, spec))
    assert len(list((tmp_path / "clips").glob("*.npy"))) == 2


def test_the_kept_scaler_follows_each_frame_size_and_thread(fight_clip):
    """model_frame keeps one swscale context per thread (a camera reader's thread converts
    every analysis frame it keeps): frames of other sizes and formats, one after another and
    from two threads at once, come out as a fresh conversion of each makes them."""
    import threading

    import av

    from ml.video import model_frame

    spec = InputSpec(resize="ffmpeg-area")
    with av.open(str(fight_clip)) as container:
        frames = [frame for _, frame in zip(range(6), container.decode(video=0), strict=False)]
    mixed = []
    for index, frame in enumerate(frames):
        if index % 3 == 1:
            frame = frame.reformat(width=320, height=180)  # a detect stream's size
        elif index % 3 == 2:
            frame = frame.reformat(format="rgb24")  # already RGB, full size
        mixed.append(frame)
    expected = [
        frame.reformat(width=64, height=64, format="rgb24", interpolation="AREA").to_ndarray()
        for frame in mixed
    ]
    results: dict[int, list[np.ndarray]] = {}

    def convert(worker: int) -> None:
        results[worker] = [model_frame(frame, spec) for _ in range(3) for frame in mixed]

    threads = [threading.Thread(target=convert, args=(worker,)) for worker in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for worker in range(2):
        assert len(results[worker]) == 3 * len(mixed)
        for index, image in enumerate(results[worker]):
            np.testing.assert_array_equal(image, expected[index % len(mixed)])


def test_a_card_without_a_resize_rule_means_opencv_and_an_unknown_one_is_refused():
    assert InputSpec.from_dict({}).resize == "opencv-area"
    assert InputSpec.from_dict({"resize": "ffmpeg-area"}).resize == "ffmpeg-area"
    with pytest.raises(ValueError, match="unknown resize 'bicubic'"):
        InputSpec.from_dict({"resize": "bicubic"})
