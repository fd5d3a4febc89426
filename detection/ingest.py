"""Camera ingestion wired to the pipeline: readers hand closed windows to `store_window`."""

from __future__ import annotations

from cameras.ingest.manager import IngestManager
from detection.model_versions import model_frame_spec
from detection.pipeline import store_ingested_window


def ingest_manager(*, shard_index: int = 0, shard_count: int = 1) -> IngestManager:
    return IngestManager(
        shard_index=shard_index,
        shard_count=shard_count,
        on_window=store_ingested_window,
        frame_spec=model_frame_spec,
    )
