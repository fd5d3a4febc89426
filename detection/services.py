"""Writes to model versions and cases."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction

from cameras.models import Camera
from detection.models import Case, Detection, ModelVersion, Segment
from reports.services import audit_record

if TYPE_CHECKING:
    from abusewatch.typing import Actor


class IllegalTransition(ValidationError):
    pass


@transaction.atomic
def case_transition(
    *,
    case: Case,
    to: str,
    actor: Actor,
    ip_address: str | None = None,
    details: dict[str, Any] | None = None,
) -> Case:
    """Move a case to another status, refusing any move the status machine does not allow."""
    locked = Case.objects.select_for_update().get(pk=case.pk)
    if not locked.can_move_to(to):
        raise IllegalTransition(
            f"A case that is {locked.get_status_display().lower()} cannot become {to}."
        )
    previous = locked.status
    locked.status = to
    if to != Case.Status.UNDER_REVIEW:
        locked.claimed_by = None
        locked.claim_expires_at = None
    locked.save(update_fields=["status", "claimed_by", "claim_expires_at", "updated_at"])
    audit_record(
        actor=actor,
        action="case.transition",
        target=locked,
        ip_address=ip_address,
        details={"from": previous, "to": to, **(details or {})},
    )
    case.refresh_from_db()
    return locked


def read_model_card(artifact_dir: Path) -> dict[str, Any]:
    """The model card alone, without loading TensorFlow (the web process never needs it)."""
    card_path = Path(artifact_dir) / "model_card.json"
    try:
        card: dict[str, Any] = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{card_path} is not a readable model card: {exc}") from exc
    if "version" not in card or "thresholds" not in card:
        raise ValidationError(f"{card_path} lacks 'version' or 'thresholds'.")
    return card


@transaction.atomic
def model_version_register(
    *, artifact_dir: Path, activate: bool = False, actor: Actor = None
) -> ModelVersion:
    """Record a model artifact (reading its card) as a ModelVersion; idempotent by name."""
    card = read_model_card(artifact_dir)
    thresholds = card["thresholds"]
    version, created = ModelVersion.objects.get_or_create(
        name=str(card["version"]),
        defaults={
            "artifact_path": str(artifact_dir),
            "low_threshold": float(thresholds["low"]),
            "high_threshold": float(thresholds["high"]),
            # The cross-validation summary, without the per-fold and per-clip detail.
            "metrics": {
                key: value
                for key, value in card.get("cross_validation", {}).items()
                if key != "folds"
            },
            "card": card,
        },
    )
    if created:
        version.full_clean()
        audit_record(actor=actor, action="model_version.register", target=version)
    if activate and not version.is_active:
        model_version_activate(version=version, actor=actor)
    return version


@transaction.atomic
def model_version_activate(*, version: ModelVersion, actor: Actor) -> None:
    ModelVersion.objects.select_for_update().filter(is_active=True).update(is_active=False)
    ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
    version.is_active = True
    audit_record(actor=actor, action="model_version.activate", target=version)


# --- Live pipeline: segments, scoring ---------------------------------------------------------


class SegmentConflict(ValidationError):
    """The camera already has a segment starting at that instant."""


def model_version_active() -> ModelVersion:
    """The model that decides now; the shipped default is registered when there is none yet."""
    from django.conf import settings

    version = ModelVersion.objects.filter(is_active=True).first()
    if version is None:
        version = model_version_register(artifact_dir=settings.DEFAULT_MODEL_DIR, activate=True)
    return version


def _enqueue_analysis(segment_id: int, frames: np.ndarray | None) -> None:
    from detection import inference
    from detection.tasks import analyse_segment

    if frames is not None:
        inference.frames_put(segment_id, frames)
    inference.pending_push(segment_id)
    analyse_segment.apply_async(args=(segment_id,))


def segment_create(
    *,
    camera_id: int,
    started_at: dt.datetime,
    ended_at: dt.datetime,
    source: str,
    original: Path,
    preview: Path | None = None,
    preview_is_original: bool = False,
    motion_score: float | None = None,
    frame_count: int = 0,
    analysis_frames: np.ndarray | None = None,
) -> Segment:
    """Store a window's files and its Segment row, then queue it for the model.

    The files land in storage before the row is written and are removed again if the row
    cannot be, so no row points at a missing file and no file is left without a row. Windows
    whose motion score is below MOTION_GATE_THRESHOLD are stored as `skipped` and not queued.
    """
    from django.conf import settings
    from django.core.files import File

    from abusewatch.hashing import file_sha256

    segment = Segment(
        camera_id=camera_id,
        started_at=started_at,
        ended_at=ended_at,
        source=source,
        motion_score=motion_score,
        frame_count=frame_count,
        original_sha256=file_sha256(original),
        original_size=original.stat().st_size,
    )
    gated = motion_score is not None and motion_score < settings.MOTION_GATE_THRESHOLD
    segment.status = Segment.Status.SKIPPED if gated else Segment.Status.PENDING
    stamp = f"{started_at:%H%M%S-%f}"
    stored: list[str] = []
    try:
        with original.open("rb") as handle:
            segment.original.save(f"{stamp}-original{original.suffix}", File(handle), save=False)
        stored.append(str(segment.original.name))
        if preview is not None:
            with preview.open("rb") as handle:
                segment.preview.save(f"{stamp}-preview.mp4", File(handle), save=False)
            stored.append(str(segment.preview.name))
        elif preview_is_original:
            # An H.264 MP4 with faststart already plays in browsers: one file serves both.
            segment.preview.name = segment.original.name
        with transaction.atomic():
            if Segment.objects.filter(camera_id=camera_id, started_at=started_at).exists():
                raise SegmentConflict(
                    f"Camera {camera_id} already has footage starting at {started_at.isoformat()}."
                )
            segment.full_clean(validate_unique=False)
            segment.save()
            if gated:
                from detection.triage import segment_attach_to_nearby_cases

                Camera.objects.select_for_update().filter(pk=camera_id).first()
                segment_attach_to_nearby_cases(segment)
            else:
                segment_id = segment.pk
                transaction.on_commit(lambda: _enqueue_analysis(segment_id, analysis_frames))
    except BaseException:
        for name in stored:
            segment.original.storage.delete(name)
        raise
    return segment


def _detection_store(
    *,
    segment_id: int,
    version: ModelVersion,
    score: float,
    preprocess_ms: float,
    inference_ms: float,
    batch_size: int,
) -> Detection | None:
    """Record one score and triage it, all or nothing; None when it was already recorded."""
    from detection.alerts import broadcast_detection
    from detection.triage import band_for, detection_triage, thresholds_for

    with transaction.atomic():
        segment = Segment.objects.select_related("camera__site").get(pk=segment_id)
        # One camera's windows are triaged one at a time, whichever worker scored them.
        Camera.objects.select_for_update().filter(pk=segment.camera_id).first()
        if Detection.objects.filter(segment=segment, model_version=version).exists():
            return None
        low, high = thresholds_for(segment.camera, version)
        detection = Detection(
            segment=segment,
            model_version=version,
            score=min(1.0, max(0.0, score)),
            band=band_for(score, low=low, high=high),
            low_threshold=low,
            high_threshold=high,
            preprocess_ms=round(preprocess_ms, 3),
            inference_ms=round(inference_ms, 3),
            batch_size=batch_size,
        )
        detection.full_clean(validate_unique=False)
        detection.save()
        Segment.objects.filter(pk=segment.pk).update(status=Segment.Status.ANALYSED)
        case = detection_triage(detection=detection)
        broadcast_detection(detection, case=case)
    return detection


def segments_analyse(*, segment_ids: list[int]) -> list[Detection]:
    """Score the still unscored windows among `segment_ids` in one model call, then triage each.

    Idempotent: windows that already have a detection by the active model are left alone, so a
    redelivered or duplicate task does nothing.
    """
    import time

    from detection import inference
    from ml.video import VideoDecodeError

    version = model_version_active()
    wanted = list(dict.fromkeys(segment_ids))
    todo = list(
        Segment.objects.filter(pk__in=wanted, status=Segment.Status.PENDING)
        .exclude(detections__model_version=version)
        .select_related("camera")
        .order_by("started_at")
    )
    if not todo:
        return []
    detector = inference.detector_for(version.artifact_path)
    spec = detector.spec
    inputs: list[np.ndarray] = []
    ready: list[tuple[Segment, float]] = []
    for segment in todo:
        began = time.perf_counter()
        frames = inference.frames_get(segment.pk)
        try:
            if frames is None or frames.shape[1:3] != (spec.height, spec.width):
                frames = np.stack(
                    inference.frames_decode(
                        Path(segment.original.path), fps=segment.camera.analysis_fps
                    )
                )
            inputs.append(detector.preprocess(list(frames)))
        except (VideoDecodeError, ValueError, OSError) as error:
            segment_mark_failed(segment_id=segment.pk, reason=str(error))
            continue
        ready.append((segment, (time.perf_counter() - began) * 1000))
    if not ready:
        return []
    began = time.perf_counter()
    scores = detector.predict(np.stack(inputs))
    inference_ms = (time.perf_counter() - began) * 1000
    detections = []
    for (segment, preprocess_ms), score in zip(ready, scores, strict=True):
        detection = _detection_store(
            segment_id=segment.pk,
            version=version,
            score=float(score),
            preprocess_ms=preprocess_ms,
            inference_ms=inference_ms,
            batch_size=len(ready),
        )
        if detection is not None:
            detections.append(detection)
    inference.frames_forget([segment.pk for segment, _ms in ready])
    return detections


def segment_mark_failed(*, segment_id: int, reason: str) -> None:
    from detection.triage import segment_attach_to_nearby_cases

    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is not None:
        with transaction.atomic():
            # The camera's lock first, in the order triage takes its locks.
            Camera.objects.select_for_update().filter(pk=segment.camera_id).first()
            Segment.objects.filter(pk=segment_id, status=Segment.Status.PENDING).update(
                status=Segment.Status.FAILED
            )
            segment_attach_to_nearby_cases(segment)
    audit_record(
        actor=None,
        action="segment.analysis_failed",
        target=segment,
        outcome="failed",
        details={"reason": reason[:300]},
    )
