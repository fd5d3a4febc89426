"""The demo camera's playlist (issue #15, Deliver 8): a violent incident, calm, an uncertain one,
calm, in that order, each clip's kind matching the shipped model's recorded score, and calm
periods long enough for a case to end. No model is run: the recorded scores (SCORES.csv) are
tied to the shipped model's version and thresholds, so a new model makes this fail until the
playlist is chosen again."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import av
from django.conf import settings

from cameras.ingest.reader import clips_of
from cameras.sources import parse_source_uri
from detection.bands import band_for
from reports.management.commands.seed_demo import DEMO_CLIPS

PLAYLIST = Path(settings.BASE_DIR) / "tests" / "fixtures" / "demo-playlist"
CLIPS = Path(settings.BASE_DIR) / "tests" / "fixtures" / "surveillance-fight"
CARD = Path(settings.BASE_DIR) / "ml" / "artifacts" / "default" / "model_card.json"
ENTRY = re.compile(r"^(\d{2})-(violent|calm|uncertain)-(\w+)\.mp4$")
KIND_BAND = {"violent": "violent", "uncertain": "uncertain", "calm": "safe"}


def seconds(clip: Path) -> float:
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        assert stream.duration is not None and stream.time_base is not None
        return float(stream.duration * stream.time_base)


def runs(kinds: list[str]) -> list[tuple[str, int, int]]:
    """(kind, first index, last index) of each run of one kind."""
    out: list[tuple[str, int, int]] = []
    for index, kind in enumerate(kinds):
        if out and out[-1][0] == kind:
            out[-1] = (kind, out[-1][1], index)
        else:
            out.append((kind, index, index))
    return out


def test_the_demo_camera_replays_the_playlist() -> None:
    assert Path(DEMO_CLIPS) == PLAYLIST


def test_playlist_order_kinds_and_quiet_periods() -> None:
    clips = clips_of(parse_source_uri(str(PLAYLIST)))  # the reader's own order
    names = [clip.name for clip in clips]
    assert all(ENTRY.match(name) for name in names), names
    numbers = [int(ENTRY.match(name).group(1)) for name in names]  # type: ignore[union-attr]
    assert numbers == list(range(1, len(names) + 1))
    kinds = [ENTRY.match(name).group(2) for name in names]  # type: ignore[union-attr]
    shape = runs(kinds)
    assert [kind for kind, _, _ in shape] == ["violent", "calm", "uncertain", "calm"]
    merge_gap = float(settings.CASE_MERGE_GAP_SECONDS)
    for kind, first, last in shape:
        length = sum(seconds(clip) for clip in clips[first : last + 1])
        if kind == "calm":
            # Long enough for the case before it to end and the next to be a new case.
            assert length >= 2 * merge_gap, (kind, length)
        else:
            assert 2 <= length <= 10, (kind, length)
    round_seconds = sum(seconds(clip) for clip in clips)
    # Both incidents and both quiet periods within five minutes, with room to spare.
    assert round_seconds <= 150, round_seconds


def test_each_entry_is_a_fixture_clip_whose_recorded_score_matches_its_kind() -> None:
    card = json.loads(CARD.read_text())
    cuts = card["thresholds"]
    assert card["version"] in (PLAYLIST / "README.md").read_text(), (
        "the shipped model changed: re-run ml.evaluate --per-clip and choose the clips again"
    )
    with (PLAYLIST / "SCORES.csv").open() as handle:
        recorded = {row["clip"]: row for row in csv.DictReader(handle)}
    for entry in sorted(PLAYLIST.glob("*.mp4")):
        target = entry.resolve()
        assert target.is_relative_to(CLIPS.resolve()) and target.is_file(), entry
        row = recorded[target.relative_to(CLIPS.resolve()).as_posix()]
        kind = ENTRY.match(entry.name).group(2)  # type: ignore[union-attr]
        band = band_for(float(row["fused"]), low=cuts["low"], high=cuts["high"])
        assert band == row["band"] == KIND_BAND[kind], (entry.name, row)
