"""Fixtures shared by the detection tests."""

from __future__ import annotations

import pytest

from detection import reconcile


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """The ids the reconciler queues again, recorded instead of sent to the broker."""
    calls: list[int] = []

    def record(segment_id: int, frames: object) -> bool:
        calls.append(segment_id)
        return True

    monkeypatch.setattr(reconcile, "enqueue", record)
    return calls
