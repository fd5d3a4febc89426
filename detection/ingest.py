"""Camera ingestion wired to the pipeline: readers hand closed windows to the shard's window
writer, which stores them a batch at a time (`store_ingested_windows`)."""

from __future__ import annotations

from django.conf import settings

from cameras.ingest.decoding import INGEST_TOTALS
from cameras.ingest.manager import IngestManager
from cameras.ingest.writer import WindowWriter
from detection.model_versions import model_frame_spec
from detection.pipeline import ingested_remux, store_ingested_windows


def ingest_manager(*, shard_index: int = 0, shard_count: int = 1) -> IngestManager:
    writer = WindowWriter(
        ingested_remux,
        store_ingested_windows,
        max_waiting=settings.INGEST_WRITE_WAITING_MAX,
        max_batch=settings.INGEST_WRITE_BATCH_MAX,
        totals=INGEST_TOTALS,
    )
    writer.start()
    return IngestManager(
        shard_index=shard_index,
        shard_count=shard_count,
        on_window=writer.put,
        frame_spec=model_frame_spec,
        on_stopped=writer.close,
        storage_lag=writer.lag,
    )
