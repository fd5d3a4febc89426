"""Kept only for bench/bench_pipeline.py, which imports the tiny-model builder from here (bench/
is changed elsewhere); the pipeline tests and their fixtures live in tests/detection,
tests/cameras, tests/alerts and tests/support/live.py. Remove once bench imports from there."""

from __future__ import annotations

from tests.support.live import _build_tiny_model

__all__ = ["_build_tiny_model"]
