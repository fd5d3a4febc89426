"""Edge uploads keep the frames `ml.video.decode_frames` gives the same file (one frame rule,
`ml.frames`): a slow source's frames are repeated, as training and the camera reader do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detection.edge import check_clip
from ml.input_spec import RESIZE_MODES
from ml.preprocess import InputSpec
from ml.video import decode_frames
from tests.cameras.test_reader_frames import FIXTURE, slow_clip


@pytest.mark.parametrize("resize", RESIZE_MODES)
@pytest.mark.parametrize("source", ["fast-30fps-fixture", "slow-5fps"])
def test_an_edge_clip_holds_the_frames_ml_video_gives_the_file(
    tmp_path: Path, source: str, resize: str
):
    clip = FIXTURE if source.startswith("fast") else slow_clip(tmp_path / "slow.mp4")
    spec = InputSpec(resize=resize)
    expected = decode_frames(clip, fps=spec.fps, spec=spec)

    checked = check_clip(clip, fps=spec.fps, spec=spec)

    assert len(checked.frames) == len(expected)
    np.testing.assert_array_equal(checked.frames, np.stack(expected))
    if source == "slow-5fps":
        assert len(checked.frames) == 29 and checked.frame_count == 15
