"""An ingest shard stores its readers' windows a batch at a time: files one by one, rows in one
transaction, a refused window rolled back alone, a transient error retried for the batch.

Real reader over a fixture clip, real remux, storage and rows; the lock is injected (a fault
stand-in, named so, as in test_store_retry).
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.clips import fixture_clips
from cameras.ingest.reader import CameraConfig, SessionWindow
from cameras.models import Site
from detection import pipeline
from detection.models import Segment
from detection.pipeline import RemuxedWindow, ingested_remux, store_ingested_windows
from tests.conftest import World
from tests.support.reading import file_config, file_reader

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("media_root")]


def remuxed_windows(world: World, count: int) -> list[RemuxedWindow]:
    """The first `count` windows of a fixture clip, remuxed as a reader's thread does."""
    config = file_config(fixture_clips()[0], camera_id=world.camera_a.pk, window_seconds=0.5)
    remuxed: list[RemuxedWindow] = []

    def on_window(config: CameraConfig, closed: SessionWindow) -> None:
        if len(remuxed) < count:
            remuxed.append(ingested_remux(config, closed))

    file_reader(config, on_window).play_once()
    assert len(remuxed) == count
    return remuxed


def stored_files(media_root: Path) -> set[Path]:
    return {path for path in media_root.rglob("*") if path.is_file()}


@pytest.fixture
def still(settings: Any) -> None:
    settings.MOTION_GATE_THRESHOLD = 1e9  # stored as still: nothing is queued for the model


@pytest.mark.usefixtures("still")
def test_a_batch_is_stored_in_one_transaction_and_its_folders_removed(world: World, monkeypatch):
    remuxed = remuxed_windows(world, 4)
    real, transactions = Segment.save, []

    def save(segment: Segment, *args: Any, **kwargs: Any) -> None:
        # The outermost atomic block around each row: the transaction it is written in.
        transactions.append(id(connection.atomic_blocks[0]))
        real(segment, *args, **kwargs)

    monkeypatch.setattr(Segment, "save", save)
    with CaptureQueriesContext(connection) as queries:
        outcomes = store_ingested_windows(remuxed)
    ids = [outcome for outcome in outcomes if isinstance(outcome, int)]
    assert ids == outcomes, outcomes
    segments = Segment.objects.filter(pk__in=ids).order_by("started_at")
    assert [segment.pk for segment in segments] == ids
    for segment, window in zip(segments, remuxed, strict=True):
        assert segment.started_at == window.started_at
        assert Path(segment.original.path).stat().st_size == segment.original_size > 0
    # One transaction for the four rows, each in its own savepoint.
    assert len(transactions) == 4 and len(set(transactions)) == 1
    savepoints = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SAVEPOINT")]
    assert len(savepoints) == 4
    assert not any(window.folder.exists() for window in remuxed)


@pytest.mark.usefixtures("still")
def test_a_refused_window_is_rolled_back_alone(world: World, media_root: Path):
    first, second, third = remuxed_windows(world, 3)
    # The second window's camera already has footage starting at that instant: a copy of it.
    copy = Path(shutil.copytree(second.folder, second.folder.with_name(f"{second.folder.name}-c")))
    store_ingested_windows([replace(second, folder=copy, original=copy / second.original.name)])
    before = Segment.objects.get()
    outcomes = store_ingested_windows([first, second, third])
    assert isinstance(outcomes[0], int) and isinstance(outcomes[2], int), outcomes
    assert "already has footage" in str(outcomes[1])
    assert Segment.objects.count() == 3
    # The refused window's files are gone; the stored ones' and the earlier row's remain.
    assert stored_files(media_root) == {
        Path(segment.original.path) for segment in Segment.objects.all()
    }
    assert Segment.objects.filter(pk=before.pk).exists()


@pytest.mark.usefixtures("still")
def test_a_lock_on_the_batch_is_waited_out_and_every_window_stored(
    world: World, settings, monkeypatch, caplog
):
    settings.INGEST_STORE_ATTEMPTS = 3
    settings.INGEST_STORE_RETRY_SECONDS = 0.01
    remuxed = remuxed_windows(world, 3)
    real, calls = Segment.save, []

    def locked_once(segment: Segment, *args: Any, **kwargs: Any) -> None:
        calls.append(segment.started_at)
        if len(calls) == 2:  # the second row of the first try: the whole try rolls back
            raise OperationalError("database is locked")
        real(segment, *args, **kwargs)

    monkeypatch.setattr(Segment, "save", locked_once)
    outcomes = store_ingested_windows(remuxed)
    assert all(isinstance(outcome, int) for outcome in outcomes), outcomes
    assert Segment.objects.count() == 3
    assert caplog.text.count("storing 3 window(s) failed (database is locked), try 1 of 3") == 1


@pytest.mark.usefixtures("still")
def test_a_window_whose_files_cannot_be_stored_does_not_hold_back_the_others(
    world: World, media_root: Path
):
    first, second = remuxed_windows(world, 2)
    first.original.unlink()  # truncated to nothing on a full disk, removed by a cleaner...
    outcomes = store_ingested_windows([first, second])
    assert isinstance(outcomes[0], OSError)
    assert isinstance(outcomes[1], int)
    assert list(Segment.objects.values_list("pk", flat=True)) == [outcomes[1]]
    assert stored_files(media_root) == {Path(Segment.objects.get().original.path)}


def test_a_paused_site_s_windows_in_a_batch_are_stored_and_not_analysed(world: World, monkeypatch):
    """The site's pause (storage quota against the legal minimum) is read once for the batch;
    its cameras' windows are kept, not queued, the other site's are queued."""
    queued: list[int] = []
    monkeypatch.setattr("detection.pipeline.enqueue", lambda pk, frames: queued.append(pk))
    Site.objects.filter(pk=world.site_a.pk).update(
        analysis_paused_at=timezone.now(), analysis_paused_reason="quota"
    )
    paused = remuxed_windows(world, 2)
    running = [replace(window, camera_id=world.camera_b.pk) for window in remuxed_windows(world, 1)]
    outcomes = store_ingested_windows([*paused, *running])
    ids = [pk for pk in outcomes if isinstance(pk, int)]
    assert ids == outcomes, outcomes
    statuses = [Segment.objects.get(pk=pk).status for pk in ids]
    assert statuses == [Segment.Status.SKIPPED, Segment.Status.SKIPPED, Segment.Status.PENDING]
    assert queued == [ids[2]]


@pytest.mark.usefixtures("still")
def test_a_connection_lost_while_reading_the_pause_is_retried_and_the_batch_stored(
    world: World, settings, monkeypatch, caplog
):
    """The batch's one read before its rows (which sites have analysis paused) is retried
    like the rows: a dropped connection there must not cost the batch its footage."""
    settings.INGEST_STORE_ATTEMPTS = 3
    settings.INGEST_STORE_RETRY_SECONDS = 0.01
    remuxed = remuxed_windows(world, 2)
    real, calls = pipeline.cameras_analysis_paused, []

    def dropped_once(camera_ids: Any) -> set[int]:
        calls.append(camera_ids)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(camera_ids)

    monkeypatch.setattr(pipeline, "cameras_analysis_paused", dropped_once)
    outcomes = store_ingested_windows(remuxed)
    assert all(isinstance(outcome, int) for outcome in outcomes), outcomes
    assert Segment.objects.count() == 2
    assert len(calls) == 2
    assert "reading the sites' analysis pause failed (server closed" in caplog.text
