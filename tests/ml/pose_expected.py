"""Write tests/fixtures/pose/expected_keypoints.json from the committed model.

Run only when the model is rebuilt on purpose (``python -m tests.ml.pose_expected``); the test
then guards the committed model and the runtime against unnoticed changes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from ml.pose import PoseEstimator

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "pose"


def fixture_frame() -> np.ndarray:
    with Image.open(FIXTURE / "frame.jpg") as image:
        return np.asarray(image.convert("RGB"))


def main() -> None:
    poses = PoseEstimator.load().estimate([fixture_frame()])[0]
    expected = {
        "frame": "frame.jpg",
        "frame_size": list(poses.frame_size),
        "keypoints": np.round(poses.keypoints.astype(np.float64), 2).tolist(),
        "boxes": np.round(poses.boxes.astype(np.float64), 2).tolist(),
        "scores": np.round(poses.scores.astype(np.float64), 4).tolist(),
    }
    (FIXTURE / "expected_keypoints.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()
