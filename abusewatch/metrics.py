"""Prometheus metrics computed at scrape time from the database and Redis.

Nothing is counted in process memory, so web, ingestion and worker processes on any host all
show up in one scrape with no multiprocess setup: the database already holds every window,
detection and case, and Redis holds the queues.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, Sum
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import CollectorRegistry

from alerts.live import redis_client, websocket_clients_open
from alerts.models import WebhookDelivery
from cameras.models import Camera
from detection.backpressure import skipped_for_capacity, stage2_cost_seconds
from detection.models import Case, Detection, RetentionRun, Segment, Stage2Skipped
from detection.reconcile import pending_summary

logger = logging.getLogger(__name__)

LATENCY_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
QUEUES = ("inference", "default")


def _histogram(
    name: str, documentation: str, field: str, buckets: tuple[float, ...], scale: float
) -> HistogramMetricFamily:
    """One query: a cumulative count per bucket, the total and the sum."""
    aggregates: dict[str, Any] = {
        f"le_{index}": Count("pk", filter=Q(**{f"{field}__lte": bound * scale}))
        for index, bound in enumerate(buckets)
    }
    row = Detection.objects.aggregate(total=Count("pk"), sum=Sum(field), **aggregates)
    pairs = [(repr(float(bound)), float(row[f"le_{index}"])) for index, bound in enumerate(buckets)]
    pairs.append(("+Inf", float(row["total"])))
    return HistogramMetricFamily(
        name, documentation, buckets=pairs, sum_value=float(row["sum"] or 0) / scale
    )


class AbuseWatchCollector:
    def collect(self) -> Iterator[Metric]:
        yield from self._cameras()
        yield _histogram(
            "abusewatch_inference_latency_seconds",
            "Model time per scored window batch, as stored with each detection.",
            "inference_ms",
            LATENCY_BUCKETS_SECONDS,
            1000.0,
        )
        yield _histogram(
            "abusewatch_inference_batch_size",
            "Windows scored together in one model call.",
            "batch_size",
            BATCH_SIZE_BUCKETS,
            1.0,
        )
        cases = GaugeMetricFamily(
            "abusewatch_cases", "Cases by band and status.", labels=["band", "status"]
        )
        for row in Case.objects.values("band", "status").annotate(n=Count("pk")).order_by():
            cases.add_metric([row["band"], row["status"]], row["n"])
        yield cases
        yield from self._pending()
        yield from self._redis()
        yield from self._storage()

    def _cameras(self) -> Iterator[Metric]:
        labels = ["camera", "camera_name", "site"]
        fps = GaugeMetricFamily("abusewatch_camera_fps", "Measured frame rate.", labels=labels)
        status = GaugeMetricFamily(
            "abusewatch_camera_status",
            "1 for the camera's current status, 0 for the others.",
            labels=[*labels, "status"],
        )
        ingested = CounterMetricFamily(
            "abusewatch_windows_ingested", "Analysis windows stored.", labels=labels
        )
        # Retention marks an erased window `purged`, so a skipped window that is erased
        # leaves this count (Prometheus reads the drop as a counter reset).
        skipped = CounterMetricFamily(
            "abusewatch_windows_skipped",
            "Windows the motion gate kept from the model (footage still kept).",
            labels=labels,
        )
        over_capacity = CounterMetricFamily(
            "abusewatch_windows_skipped_over_capacity",
            "Windows deferred for capacity and never analysed (footage still kept).",
            labels=labels,
        )
        cameras = Camera.objects.annotate(
            ingested=Count("segments"),
            # Never deferred: skipped by the motion gate, not for capacity.
            skipped=Count(
                "segments",
                filter=Q(segments__status=Segment.Status.SKIPPED)
                & Q(segments__deferred_at__isnull=True),
            ),
            over_capacity=Count("segments", filter=skipped_for_capacity("segments__")),
        ).order_by("pk")
        for camera in cameras:
            values = [str(camera.pk), camera.name, str(camera.site_id)]
            fps.add_metric(values, camera.measured_fps or 0.0)
            for choice in Camera.Status.values:
                status.add_metric([*values, choice], 1.0 if camera.status == choice else 0.0)
            ingested.add_metric(values, camera.ingested)
            skipped.add_metric(values, camera.skipped)
            over_capacity.add_metric(values, camera.over_capacity)
        yield from (fps, status, ingested, skipped, over_capacity)

    def _pending(self) -> Iterator[Metric]:
        # From the database, not the queue: a window whose message was lost (broker restarted,
        # worker killed) is pending with an empty queue.
        count, oldest = pending_summary()
        yield GaugeMetricFamily(
            "abusewatch_windows_pending", "Windows stored and waiting for the model.", value=count
        )
        yield GaugeMetricFamily(
            "abusewatch_windows_pending_oldest_seconds",
            "Age of the oldest window waiting for the model (0 when none waits).",
            value=oldest,
        )
        deferred, oldest_deferred = pending_summary(deferred=True)
        yield GaugeMetricFamily(
            "abusewatch_windows_deferred",
            "Waiting windows the inference worker deferred to idle time: it fell behind "
            "(included in abusewatch_windows_pending).",
            value=deferred,
        )
        yield GaugeMetricFamily(
            "abusewatch_windows_deferred_oldest_seconds",
            "Age of the oldest deferred window (0 when none waits).",
            value=oldest_deferred,
        )
        stage2 = CounterMetricFamily(
            "abusewatch_stage2_skipped",
            "Windows the cascade's gate passed that were decided on stage 1 alone, by reason.",
            labels=["reason"],
        )
        counts = dict(
            Detection.objects.exclude(stage2_skipped="")
            .values_list("stage2_skipped")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for reason in (Stage2Skipped.OVER_CAPACITY, Stage2Skipped.UNREADABLE):
            stage2.add_metric([reason.value], counts.get(reason.value, 0))
        yield stage2
        yield GaugeMetricFamily(
            "abusewatch_stage2_cost_seconds",
            "Measured cost of stage 2 on one window (moving average), used for admission.",
            value=stage2_cost_seconds(),
        )

    def _redis(self) -> Iterator[Metric]:
        client = redis_client()
        if client is None:
            return  # embedded mode without a broker: tasks run in-process, nothing queues
        try:
            queues = (*QUEUES, *filter(None, [settings.INFERENCE_POSE_QUEUE]))
            depths = {queue: int(client.llen(queue)) for queue in queues}
            sockets = websocket_clients_open(client)
        except Exception as exc:
            logger.warning("metrics: Redis unavailable (%s)", type(exc).__name__)
            return
        finally:
            client.close()
        depth = GaugeMetricFamily(
            "abusewatch_queue_depth", "Tasks waiting in a Celery queue.", labels=["queue"]
        )
        for queue, value in depths.items():
            depth.add_metric([queue], value)
        yield depth
        yield GaugeMetricFamily(
            "abusewatch_websocket_clients", "Open live-alert websockets.", value=max(sockets, 0)
        )

    def _storage(self) -> Iterator[Metric]:
        purged = Segment.objects.filter(status=Segment.Status.PURGED).count()
        yield CounterMetricFamily(
            "abusewatch_segments_purged", "Windows whose footage retention erased.", value=purged
        )
        run = RetentionRun.objects.filter(finished_at__isnull=False).first()
        if run is not None:
            yield GaugeMetricFamily(
                "abusewatch_media_bytes",
                "Bytes under MEDIA_ROOT at the last retention run.",
                value=run.storage_bytes,
            )
            yield GaugeMetricFamily(
                "abusewatch_media_quota_bytes", "Storage quota (0 = none).", value=run.quota_bytes
            )
            yield GaugeMetricFamily(
                "abusewatch_media_quota_exceeded",
                "1 when the last retention run could not get under the quota.",
                value=1.0 if run.quota_exceeded else 0.0,
            )
            yield GaugeMetricFamily(
                "abusewatch_retention_last_run_timestamp_seconds",
                "When the last retention run finished.",
                value=run.finished_at.timestamp() if run.finished_at else 0.0,
            )
        deliveries = GaugeMetricFamily(
            "abusewatch_webhook_deliveries", "Webhook deliveries by status.", labels=["status"]
        )
        counts = dict(
            WebhookDelivery.objects.values_list("status").annotate(n=Count("pk")).order_by()
        )
        for choice in WebhookDelivery.Status.values:
            deliveries.add_metric([choice], counts.get(choice, 0))
        yield deliveries


def registry() -> CollectorRegistry:
    # A registry of our own: the default one would add this process's Python metrics, which
    # say nothing about the system and differ from scrape to scrape across processes.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AbuseWatchCollector())
    return registry
