"""A window whose row cannot be written for a transient database error is stored on a later
try, not dropped (issue #14: 96 cameras on SQLite lost 13 windows to "database is locked").

The lock itself is injected (a fault stand-in, named so): SQLite raises it only after its
20-s busy timeout under many writers, and PostgreSQL waits instead of failing. Everything
else is real: a reader over a fixture clip, the remux, the storage and the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connection

from bench.clips import fixture_clips
from cameras.ingest.reader import CameraConfig, SessionWindow
from detection.models import Segment
from detection.pipeline import store_ingested_window
from tests.conftest import World
from tests.support.reading import file_config, file_reader

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media_root")]


Outcome = int | BaseException


@pytest.fixture
def play(
    world: World, settings
) -> Callable[[Callable[[SessionWindow], int | None]], list[Outcome]]:
    """Play a fixture clip through a camera reader and hand each closed window to `store` while
    its stream is open (the stream is the remux's template, as in the ingest command); returns
    each window's segment id or the exception storing it raised."""
    settings.MOTION_GATE_THRESHOLD = 1e9  # stored as still: nothing is queued for the model
    config = config_of(world, source_uri=str(fixture_clips()[0]))

    def run(store: Callable[[SessionWindow], int | None]) -> list[Outcome]:
        outcomes: list[Outcome] = []

        def on_window(_config: CameraConfig, closed: SessionWindow) -> None:
            if len(outcomes) >= 2:
                return
            try:
                outcome = store(closed)
            except Exception as error:
                outcomes.append(error)
            else:
                assert outcome is not None
                outcomes.append(outcome)

        reader = file_reader(config, on_window)
        reader.play_once()
        assert len(outcomes) == 2
        return outcomes

    return run


class LockedFor:
    """Segment.save raises SQLite's "database is locked" on its first `times` calls."""

    def __init__(self, times: int) -> None:
        self.left = times
        real = Segment.save

        def save(segment: Segment, *args: Any, **kwargs: Any) -> None:
            if self.left > 0:
                self.left -= 1
                raise OperationalError("database is locked")
            real(segment, *args, **kwargs)

        self.save = save


def stored_files(media_root: Path) -> set[Path]:
    return {path for path in media_root.rglob("*") if path.is_file()}


def config_of(world: World, source_uri: str = "unused") -> CameraConfig:
    return file_config(source_uri, camera_id=world.camera_a.pk, window_seconds=1.0)


def test_a_window_locked_out_twice_is_stored_on_the_third_try(
    world: World, play, settings, monkeypatch, media_root: Path, caplog
):
    settings.INGEST_STORE_ATTEMPTS = 3
    settings.INGEST_STORE_RETRY_SECONDS = 0.01
    locked = LockedFor(2)
    monkeypatch.setattr(Segment, "save", locked.save)
    first, second = play(lambda closed: store_ingested_window(config_of(world), closed))
    assert isinstance(first, int) and isinstance(second, int), (first, second)
    assert locked.left == 0
    # The footage is whole, and the failed tries left no file behind.
    segments = Segment.objects.filter(pk__in=[first, second])
    assert len(segments) == 2
    for segment in segments:
        assert Path(segment.original.path).stat().st_size == segment.original_size > 0
    assert stored_files(media_root) == {Path(segment.original.path) for segment in segments}
    assert caplog.text.count("storing 1 window(s) failed (database is locked)") == 2
    assert connection.is_usable()


def test_a_lock_that_outlasts_every_try_is_raised_and_leaves_nothing(
    world: World, play, settings, monkeypatch, media_root: Path
):
    settings.INGEST_STORE_ATTEMPTS = 2
    settings.INGEST_STORE_RETRY_SECONDS = 0.01
    # Locked for both tries of the first window; the second window finds it free.
    monkeypatch.setattr(Segment, "save", LockedFor(2).save)
    first, second = play(lambda closed: store_ingested_window(config_of(world), closed))
    assert isinstance(first, OperationalError)
    assert isinstance(second, int)
    # The reader went on; the lost window left no file without a row.
    assert list(Segment.objects.values_list("pk", flat=True)) == [second]
    assert stored_files(media_root) == {Path(Segment.objects.get().original.path)}


def test_a_conflict_is_not_retried(world: World, play, settings, caplog):
    settings.INGEST_STORE_RETRY_SECONDS = 0.01

    def store_twice(closed: SessionWindow) -> int | None:
        store_ingested_window(config_of(world), closed)
        return store_ingested_window(config_of(world), closed)

    first, _ = play(store_twice)
    assert "already has footage" in str(first)
    assert "window(s) failed" not in caplog.text
    assert Segment.objects.count() == 2
