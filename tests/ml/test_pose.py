"""The committed pose model and its runtime: keypoints, refusals, bad frames, threads, cache."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from ml.pose import (
    FramePoses,
    PoseEstimator,
    PoseModelError,
    check_pose_model,
    clip_pose_views,
    clip_poses,
    default_pose_model_path,
    letterbox,
    merge_people,
    poses_from_arrays,
    poses_to_arrays,
    tile_regions,
)
from tests.ml.pose_expected import FIXTURE, fixture_frame


@pytest.fixture(scope="module")
def estimator() -> PoseEstimator:
    return PoseEstimator.load()


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return fixture_frame()


def test_committed_model_matches_its_provenance() -> None:
    model = default_pose_model_path()
    provenance = json.loads((model.parent / "provenance.json").read_text())
    check_pose_model()
    assert model.stat().st_size == provenance["bytes"] < 10 * 1024 * 1024
    assert provenance["source"]["integrity"].startswith("sha512-")
    for name in ("LICENSE", "LICENSE.npm-package", "NOTICE"):
        assert (model.parent / name).stat().st_size > 0
    assert "Apache License" in (model.parent / "LICENSE").read_text()


def test_keypoints_on_the_fixture_frame_match_the_stored_ones(
    estimator: PoseEstimator, frame: np.ndarray
) -> None:
    expected = json.loads((FIXTURE / "expected_keypoints.json").read_text())
    poses = estimator.estimate([frame])[0]
    assert poses.frame_size == tuple(expected["frame_size"]) == (640, 360)
    assert len(poses) == len(expected["scores"]) == 3
    # JPEG decoders and XNNPACK builds may differ in the last bits; a changed model or a
    # coordinate mapping bug moves keypoints by many pixels.
    np.testing.assert_allclose(poses.scores, expected["scores"], atol=0.02)
    np.testing.assert_allclose(poses.boxes, expected["boxes"], atol=3.0)
    np.testing.assert_allclose(
        poses.keypoints[:, :, :2], np.array(expected["keypoints"])[:, :, :2], atol=3.0
    )
    np.testing.assert_allclose(
        poses.keypoints[:, :, 2], np.array(expected["keypoints"])[:, :, 2], atol=0.03
    )
    assert poses.keypoints.dtype == poses.boxes.dtype == poses.scores.dtype == np.float32


def _model_copy(tmp_path: Path) -> Path:
    source = default_pose_model_path()
    for name in (source.name, "provenance.json"):
        shutil.copyfile(source.parent / name, tmp_path / name)
    return tmp_path / source.name


def test_altered_model_is_refused_naming_the_file(tmp_path: Path) -> None:
    model = _model_copy(tmp_path)
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the weights
    model.write_bytes(bytes(data))
    with pytest.raises(PoseModelError, match=str(model)):
        check_pose_model(model)
    with pytest.raises(PoseModelError, match="altered"):
        PoseEstimator.load(model)


def test_missing_or_truncated_model_is_refused_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "gone.tflite"
    with pytest.raises(PoseModelError, match=str(missing)):
        PoseEstimator.load(missing)
    model = _model_copy(tmp_path)
    model.write_bytes(model.read_bytes()[:1000])  # truncated
    with pytest.raises(PoseModelError, match=str(model)):
        check_pose_model(model)


def test_model_without_provenance_is_refused(tmp_path: Path) -> None:
    model = _model_copy(tmp_path)
    (tmp_path / "provenance.json").write_text("{not json")
    with pytest.raises(PoseModelError, match="provenance"):
        check_pose_model(model)


def test_recheck_notices_a_change_after_a_good_check(tmp_path: Path) -> None:
    model = _model_copy(tmp_path)
    check_pose_model(model)
    model.write_bytes(model.read_bytes() + b"\0")  # appended garbage: size changes
    with pytest.raises(PoseModelError, match="altered"):
        check_pose_model(model)


def _person_crop(frame: np.ndarray, estimator: PoseEstimator) -> np.ndarray:
    best = estimator.estimate([frame])[0]
    x0, y0, x1, y1 = best.boxes[0].astype(int)
    return frame[max(0, y0 - 10) : y1 + 10, max(0, x0 - 10) : x1 + 10]


def test_frames_with_no_one_one_person_and_a_crowd(
    estimator: PoseEstimator, frame: np.ndarray
) -> None:
    rng = np.random.default_rng(0)
    empty_wall = np.full((360, 640, 3), 180, np.uint8)
    noise = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    crop = _person_crop(frame, estimator)
    # Eight copies of a person side by side: more people than the model's six slots.
    crowd = np.concatenate([np.concatenate([crop] * 4, axis=1)] * 2, axis=0)
    results = estimator.estimate([empty_wall, noise, crop, crowd])
    assert len(results[0]) == 0
    assert len(results[1]) <= 1
    assert len(results[2]) >= 1
    assert 1 <= len(results[3]) <= 6
    height, width = crowd.shape[:2]
    assert results[3].frame_size == (width, height)
    assert (results[3].keypoints[:, :, 0] <= width).all()
    assert (results[3].keypoints[:, :, 1] <= height).all()


def test_black_tiny_rotated_grey_and_float_frames_give_results(
    estimator: PoseEstimator, frame: np.ndarray
) -> None:
    odd = [
        np.zeros((360, 640, 3), np.uint8),  # black
        np.full((6, 8, 3), 90, np.uint8),  # tiny, 8 x 6
        np.zeros((1, 1, 3), np.uint8),  # one pixel
        np.ascontiguousarray(np.rot90(frame)),  # rotated: portrait 360 x 640
        frame[:, :, 0],  # grey, two-dimensional
        frame.astype(np.float32) / 255.0,  # float in [0, 1]
        np.where(np.isfinite(frame), np.nan, 0.0),  # all NaN
        frame.astype(np.int64) * 1000,  # out of range integers, clipped
        np.concatenate([frame, np.full((*frame.shape[:2], 1), 255, np.uint8)], axis=2),  # RGBA
    ]
    results = estimator.estimate(odd)
    assert len(results) == len(odd)
    assert len(results[0]) == 0
    assert results[1].frame_size == (8, 6)
    assert results[3].frame_size == (360, 640)
    assert len(results[3]) >= 1
    for poses, source in zip(results, odd, strict=True):
        assert poses.frame_size == (source.shape[1], source.shape[0])
        assert np.isfinite(poses.keypoints).all() and np.isfinite(poses.boxes).all()
    # The float frame is the same picture as the uint8 one.
    np.testing.assert_allclose(results[5].scores, estimator.estimate([frame])[0].scores, atol=0.02)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((10, 10, 5), np.uint8),  # five channels
        np.zeros((4, 4, 4, 3), np.uint8),  # a batch where a frame belongs
        np.zeros((0, 10, 3), np.uint8),  # empty
        np.zeros(12, np.uint8),  # one-dimensional
        np.array([["a", "b"]], dtype=object),  # not numbers
        "frame.jpg",  # a path, not pixels
    ],
    ids=["5-channels", "4-d", "empty", "1-d", "object", "string"],
)
def test_frames_that_are_not_images_raise_a_value_error_naming_the_index(
    estimator: PoseEstimator, frame: np.ndarray, bad: object
) -> None:
    with pytest.raises(ValueError, match="frame 1"):
        estimator.estimate([frame, bad])  # type: ignore[list-item]


def test_empty_list_gives_empty_list(estimator: PoseEstimator) -> None:
    assert estimator.estimate([]) == []


def test_two_threads_get_identical_results(estimator: PoseEstimator, frame: np.ndarray) -> None:
    frames = [frame, np.ascontiguousarray(frame[:, ::-1]), frame[60:300, 100:500].copy()]
    single = estimator.estimate(frames)
    outputs: dict[int, list[list[FramePoses]]] = {0: [], 1: []}
    errors: list[BaseException] = []

    def worker(slot: int) -> None:
        try:
            for _ in range(4):
                outputs[slot].append(estimator.estimate(frames))
        except BaseException as error:  # surfaced below; a thread's exception is otherwise lost
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for runs in outputs.values():
        assert len(runs) == 4
        for run in runs:
            for got, want in zip(run, single, strict=True):
                np.testing.assert_array_equal(got.keypoints, want.keypoints)
                np.testing.assert_array_equal(got.scores, want.scores)


@pytest.mark.parametrize(
    "shape", [(360, 640), (640, 360), (6, 8), (256, 256), (1080, 1920), (101, 37)]
)
def test_letterbox_round_trip_of_coordinates(shape: tuple[int, int]) -> None:
    height, width = shape
    frame = np.zeros((height, width, 3), np.uint8)
    boxed, box = letterbox(frame)
    assert boxed.shape == (256, 256, 3)
    rng = np.random.default_rng(1)
    points = rng.uniform([0, 0], [width, height], size=(50, 2)).astype(np.float32)
    np.testing.assert_allclose(box.to_frame(box.to_input(points)), points, rtol=1e-5, atol=1e-3)
    # The frame's corners land on the edges of the pasted image, inside the square.
    corners = box.to_input(np.array([[0, 0], [width, height]], np.float32))
    assert (corners >= -1e-4).all() and (corners <= 256 + 1e-4).all()
    assert np.isclose(corners[1, 0] - corners[0, 0], 256) or np.isclose(
        corners[1, 1] - corners[0, 1], 256
    )


def test_a_bright_pixel_lands_where_the_letterbox_says() -> None:
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[200:210, 500:510] = 255
    boxed, box = letterbox(frame)
    ys, xs = np.nonzero(boxed[:, :, 0] > 100)
    centre = box.to_frame(np.array([[xs.mean(), ys.mean()]], np.float32))[0]
    np.testing.assert_allclose(centre, [505, 205], atol=1.5)


def test_pose_arrays_round_trip_including_empty_frames(
    estimator: PoseEstimator, frame: np.ndarray
) -> None:
    poses = estimator.estimate([frame, np.zeros((20, 30, 3), np.uint8), frame])
    back = poses_from_arrays(poses_to_arrays(poses))
    assert [len(p) for p in back] == [len(p) for p in poses]
    assert back[1].frame_size == (30, 20)
    np.testing.assert_array_equal(back[2].keypoints, poses[2].keypoints)
    assert poses_from_arrays(poses_to_arrays([])) == []


def test_clip_poses_are_cached_and_reused(
    estimator: PoseEstimator, fight_clip: Path, tmp_path: Path
) -> None:
    first = clip_poses(fight_clip, 2.0, estimator, cache_dir=tmp_path)
    stored = list((tmp_path / "pose").glob("*.npz"))
    assert len(stored) == 1 and len(first) == 4
    second = clip_poses(fight_clip, 2.0, estimator, cache_dir=tmp_path)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
    # A corrupt cache entry is recomputed, not trusted.
    stored[0].write_bytes(b"garbage")
    third = clip_poses(fight_clip, 2.0, estimator, cache_dir=tmp_path)
    assert [len(p) for p in third] == [len(p) for p in first]
    clip_poses(fight_clip, 3.0, estimator, cache_dir=tmp_path)
    assert len(list((tmp_path / "pose").glob("*.npz"))) == 2


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return float(ix * iy / union)


@pytest.mark.parametrize("tiles", [2, 4])
def test_tiled_estimation_finds_the_same_people_in_frame_coordinates(
    estimator: PoseEstimator, frame: np.ndarray, tiles: int
) -> None:
    whole = estimator.estimate([frame])[0]
    tiled = PoseEstimator.load(tiles=tiles).estimate([frame])[0]
    assert tiled.frame_size == whole.frame_size
    # Each person of the whole frame is found again, at the same place (no crop offset bug).
    for box in whole.boxes:
        assert max(_iou(box, other) for other in tiled.boxes) > 0.5
    assert len(tiled) <= len(whole) + 2  # crops do not duplicate people


@pytest.mark.parametrize("tiles", [2, 4])
def test_tiling_copes_with_tiny_portrait_and_black_frames(tiles: int) -> None:
    estimator = PoseEstimator.load(tiles=tiles)
    odd = [
        np.zeros((1, 1, 3), np.uint8),
        np.zeros((6, 8, 3), np.uint8),
        np.zeros((640, 360, 3), np.uint8),
    ]
    results = estimator.estimate(odd)
    assert [r.frame_size for r in results] == [(1, 1), (8, 6), (360, 640)]
    assert all(len(r) == 0 for r in results)


def test_tile_regions_cover_the_frame_with_overlap() -> None:
    regions = tile_regions(640, 360, 2)
    assert regions[0] == (0, 0, 640, 360)
    assert regions[1][2] > regions[2][0]  # the halves overlap
    assert tile_regions(360, 640, 2)[1] == (0, 0, 360, 384)  # portrait: split top and bottom
    assert len(tile_regions(640, 360, 4)) == 5
    with pytest.raises(ValueError, match="tiles"):
        PoseEstimator.load(tiles=3)


def test_merging_keeps_the_best_of_duplicates_and_distinct_people() -> None:
    def one(box: list[float], score: float) -> FramePoses:
        keypoints = np.zeros((1, 17, 3), np.float32)
        keypoints[0, :, :2] = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]
        return FramePoses(
            keypoints, np.array([box], np.float32), np.array([score], np.float32), (640, 360)
        )

    whole = one([100, 100, 200, 300], 0.3)
    cut = one([100, 100, 200, 200], 0.5)  # the same person, cut by a crop edge
    other = one([400, 100, 500, 300], 0.2)
    merged = merge_people([whole, cut.shifted(0, 0), other], (640, 360))
    assert len(merged) == 2
    np.testing.assert_array_equal(merged.scores, np.array([0.5, 0.2], np.float32))
    moved = other.shifted(10, 20)
    np.testing.assert_allclose(moved.boxes[0], [410, 120, 510, 320])
    np.testing.assert_allclose(moved.keypoints[0, 0, :2], [460, 220])


def test_views_give_the_whole_frame_and_the_tiled_poses_from_one_pass(
    estimator: PoseEstimator, frame: np.ndarray
) -> None:
    tiled_estimator = PoseEstimator.load(tiles=2)
    whole, tiled = tiled_estimator.estimate_views([frame, np.zeros((6, 8, 3), np.uint8)])
    untiled = estimator.estimate([frame])[0]
    # The whole-frame view is exactly what an untiled estimator sees.
    np.testing.assert_array_equal(whole[0].keypoints, untiled.keypoints)
    assert [len(p) for p in tiled] == [
        len(p) for p in tiled_estimator.estimate([frame, np.zeros((6, 8, 3), np.uint8)])
    ]
    same_whole, same_tiled = estimator.estimate_views([frame])
    assert same_whole is same_tiled  # untiled: one list, both views
    assert tiled_estimator.estimate_views([]) == ([], [])


def test_clip_pose_views_share_the_untiled_cache(
    estimator: PoseEstimator, fight_clip: Path, tmp_path: Path
) -> None:
    tiled_estimator = PoseEstimator.load(tiles=2)
    whole, tiled = clip_pose_views(fight_clip, 2.0, tiled_estimator, cache_dir=tmp_path)
    names = sorted(p.name.split("-", 1)[1] for p in (tmp_path / "pose").glob("*.npz"))
    assert len(names) == 2 and sum(n.endswith("-t2.npz") for n in names) == 1
    # The untiled estimator reads the whole-frame view from the cache the tiled run wrote.
    cached = clip_poses(fight_clip, 2.0, estimator, cache_dir=tmp_path)
    assert len(list((tmp_path / "pose").glob("*.npz"))) == 2
    for a, b in zip(cached, whole, strict=True):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
    again = clip_poses(fight_clip, 2.0, tiled_estimator, cache_dir=tmp_path)
    assert [len(p) for p in again] == [len(p) for p in tiled]
