"""A model worker loads the model it serves as it starts, before it takes a window and before it
beats (detection.inference.worker_preload, run from the worker_init signal).

Loaded lazily, the first windows after a worker (re)started waited for TensorFlow and the model:
20-30 s on a 2-core box with ingestion starting beside it, a backlog every start.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from detection import inference

pytestmark = [pytest.mark.django_db]


def key(version: Any, *, with_stage2: bool) -> tuple[str, str, bool]:
    return (version.artifact_path, str(version.card["version"]), with_stage2)


@pytest.fixture
def no_loaded_models(monkeypatch: Any) -> dict[Any, Any]:
    loaded: dict[Any, Any] = {}
    monkeypatch.setattr(inference, "_detectors", loaded)
    return loaded


def test_the_stage_one_worker_loads_stage_one_alone_when_a_pose_worker_finishes(
    active_model: Any, settings: Any, no_loaded_models: dict[Any, Any], caplog: Any
) -> None:
    settings.INFERENCE_POSE_QUEUE = "pose"
    with caplog.at_level(logging.ERROR, logger="detection.inference"):
        inference.worker_preload({"inference"})
    assert caplog.text == "", "loading or warming up the model failed"
    assert list(no_loaded_models) == [key(active_model, with_stage2=False)]
    # The first window finds it loaded: the same detector, not a second load.
    loaded = no_loaded_models[key(active_model, with_stage2=False)]
    assert (
        inference.detector_for(
            active_model.artifact_path, card=active_model.card, with_stage2=False
        )
        is loaded
    )


def test_the_pose_worker_and_a_worker_without_a_pose_queue_load_the_whole_cascade(
    active_model: Any, settings: Any, no_loaded_models: dict[Any, Any]
) -> None:
    settings.INFERENCE_POSE_QUEUE = "pose"
    inference.worker_preload({"pose"})
    assert list(no_loaded_models) == [key(active_model, with_stage2=True)]
    no_loaded_models.clear()
    settings.INFERENCE_POSE_QUEUE = ""
    inference.worker_preload({"inference"})
    assert list(no_loaded_models) == [key(active_model, with_stage2=True)]


def test_a_worker_without_a_model_queue_loads_nothing(
    active_model: Any, settings: Any, no_loaded_models: dict[Any, Any]
) -> None:
    settings.INFERENCE_POSE_QUEUE = "pose"
    inference.worker_preload({"default", "media"})
    assert no_loaded_models == {}


def test_a_load_that_fails_at_start_is_logged_and_left_to_the_first_window(
    active_model: Any, monkeypatch: Any, caplog: Any, no_loaded_models: dict[Any, Any]
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise OSError("disk unreadable")

    monkeypatch.setattr(inference, "_load_detector", broken)
    with caplog.at_level(logging.ERROR, logger="detection.inference"):
        inference.worker_preload({"inference"})  # no exception: the worker still starts
    assert "model not loaded at start" in caplog.text
    assert no_loaded_models == {}
