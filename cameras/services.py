"""Writes to sites and cameras. Every write validates with full_clean() and is audited."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction

from audit.services import audit_record
from cameras.announce import broadcast_camera_status
from cameras.models import Camera, Site
from cameras.rules import BOUND_FIELDS, camera_bound_errors
from cameras.sources import source_allowed_for

if TYPE_CHECKING:
    from audit.typing import Actor

CAMERA_EDITABLE_FIELDS = (
    "name",
    "source_uri",
    "analysis_uri",
    "enabled",
    "analysis_fps",
    "window_seconds",
    "window_overlap_seconds",
    "low_threshold",
    "high_threshold",
)


def _is_operator(actor: Actor) -> bool:
    # actor None is the system itself (demo seed, management commands).
    return actor is None or bool(getattr(actor, "is_superuser", False))


def _check_source_allowed(*, source_uri: str, actor: Actor, field: str = "source_uri") -> None:
    # The detect stream (analysis_uri) is opened by the same reader as the main source, so it
    # answers to the same policy: no server disk, no internal addresses for a centre admin.
    refusal = source_allowed_for(source_uri, is_operator=_is_operator(actor))
    if refusal is not None:
        raise ValidationError({field: [refusal]})


def _check_low_threshold_allowed(
    *, low: float | None, actor: Actor, model_low: float | None
) -> None:
    """A centre may make its camera more sensitive, not hide windows from the experts.

    Windows below `low` are calm: no case, no review. A centre admin raising it above the
    model's own would decide that their own centre's ambiguous footage is never looked at,
    so only an operator may. Raising `high` stays theirs: it sends fewer windows straight to
    the police, and every one of them still reaches an expert.
    """
    if low is None or _is_operator(actor):
        return
    if model_low is None:
        # The caller (above cameras: the model lives in detection) must say what it is.
        raise ValueError("model_low_threshold is needed to check a centre's low threshold")
    if low > model_low:
        raise ValidationError(
            {
                "low_threshold": [
                    f"At most {model_low:.3f}, the model's own: a higher low threshold would "
                    "keep uncertain windows from the experts. Only an operator can raise it."
                ]
            }
        )


def _check_bounds(*, camera: Camera, changed: set[str], actor: Actor) -> list[str]:
    """The bounds `camera` now breaks through `changed`: refused for a centre admin, returned
    (to be audited) for an operator."""
    errors = camera_bound_errors(
        window=camera.window_seconds,
        overlap=camera.window_overlap_seconds,
        high=camera.high_threshold,
    )
    broken = {name: message for name, message in errors.items() if BOUND_FIELDS[name] & changed}
    if broken and not _is_operator(actor):
        raise ValidationError({name: [message] for name, message in broken.items()})
    return sorted(broken)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@transaction.atomic
def camera_create(
    *,
    site: Site,
    actor: Actor,
    ip_address: str | None = None,
    model_low_threshold: float | None = None,
    **fields: Any,
) -> Camera:
    unknown = set(fields) - set(CAMERA_EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"camera_create got unknown fields: {sorted(unknown)}")
    _check_source_allowed(source_uri=fields.get("source_uri", ""), actor=actor)
    _check_source_allowed(
        source_uri=fields.get("analysis_uri", ""), actor=actor, field="analysis_uri"
    )
    _check_low_threshold_allowed(
        low=fields.get("low_threshold"), actor=actor, model_low=model_low_threshold
    )
    camera = Camera(site=site, **fields)
    beyond = _check_bounds(camera=camera, changed=set(fields), actor=actor)
    camera.full_clean()
    camera.save()
    details: dict[str, Any] = {"site": site.pk, "name": camera.name}
    if beyond:
        # An operator's consent to settings beyond the bounds, on the record.
        details["beyond_bounds"] = {name: getattr(camera, name) for name in beyond}
    audit_record(
        actor=actor,
        action="camera.create",
        target=camera,
        ip_address=ip_address,
        details=details,
    )
    return camera


@transaction.atomic
def camera_update(
    *,
    camera: Camera,
    actor: Actor,
    ip_address: str | None = None,
    model_low_threshold: float | None = None,
    **changes: Any,
) -> Camera:
    unknown = set(changes) - set(CAMERA_EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"camera_update got unknown fields: {sorted(unknown)}")
    camera = Camera.objects.select_for_update().get(pk=camera.pk)
    changed = {name: value for name, value in changes.items() if getattr(camera, name) != value}
    if "source_uri" in changed:
        _check_source_allowed(source_uri=changed["source_uri"], actor=actor)
    if "analysis_uri" in changed:
        _check_source_allowed(source_uri=changed["analysis_uri"], actor=actor, field="analysis_uri")
    if "low_threshold" in changed:
        _check_low_threshold_allowed(
            low=changed["low_threshold"], actor=actor, model_low=model_low_threshold
        )
    for name, value in changed.items():
        setattr(camera, name, value)
    beyond = _check_bounds(camera=camera, changed=set(changed), actor=actor)
    camera.full_clean()
    camera.save()
    if changed:
        details: dict[str, Any] = {"changed": sorted(changed)}
        if beyond:
            details["beyond_bounds"] = {name: getattr(camera, name) for name in beyond}
        audit_record(
            actor=actor,
            action="camera.update",
            target=camera,
            ip_address=ip_address,
            details=details,
        )
    return camera


@transaction.atomic
def camera_delete(*, camera: Camera, actor: Actor, ip_address: str | None = None) -> None:
    """Disable a camera that has footage or cases (evidence is never dropped); else delete it."""
    if camera.segments.exists() or camera.cases.exists():
        camera_update(camera=camera, actor=actor, ip_address=ip_address, enabled=False)
        return
    audit_record(
        actor=actor,
        action="camera.delete",
        target=camera,
        ip_address=ip_address,
        details={"name": camera.name, "site": camera.site_id},
    )
    camera.delete()


@transaction.atomic
def camera_issue_upload_token(
    *, camera: Camera, actor: Actor, ip_address: str | None = None
) -> str:
    """Give the camera a new edge upload token, return it once, and forget all but its hash."""
    token = secrets.token_urlsafe(32)
    Camera.objects.filter(pk=camera.pk).update(upload_token_hash=_hash_token(token))
    camera.upload_token_hash = _hash_token(token)
    audit_record(
        actor=actor, action="camera.upload_token.issue", target=camera, ip_address=ip_address
    )
    return token


def camera_for_upload_token(token: str) -> Camera | None:
    if not token:
        return None
    return (
        Camera.objects.select_related("site")
        .filter(upload_token_hash=_hash_token(token), enabled=True)
        .first()
    )


def camera_set_status(
    *,
    camera_id: int,
    status: str,
    detail: str = "",
    last_frame_at: dt.datetime | None = None,
    measured_fps: float | None = None,
) -> Camera | None:
    """Record a camera's health as its reader sees it and push it to the camera's watchers.

    Not audited: it is the ingestion process's heartbeat (every few seconds per camera), not a
    person's action, and the audit chain records decisions, views and downloads.
    Returns None when the camera was deleted meanwhile.
    """
    if status not in Camera.Status.values:
        raise ValueError(f"unknown camera status {status!r}")
    changes: dict[str, Any] = {"status": status, "status_detail": detail[:500]}
    if last_frame_at is not None:
        changes["last_frame_at"] = last_frame_at
    if measured_fps is not None or status != Camera.Status.ONLINE:
        changes["measured_fps"] = measured_fps
    with transaction.atomic():
        if not Camera.objects.filter(pk=camera_id).update(**changes):
            return None
        camera = Camera.objects.get(pk=camera_id)
        broadcast_camera_status(camera)
    return camera


def site_set_retention(
    *, site: Site, retention_hours: int, actor: Actor, ip_address: str | None = None
) -> Site:
    """Change how long a site keeps safe footage: longer than its law's minimum is the
    centre's choice, shorter is refused with the reason (Site.clean names the article)."""
    before = site.retention_hours
    site.retention_hours = retention_hours
    try:
        site.full_clean()
    except ValidationError:
        site.retention_hours = before
        # The refusal is on record too: an attempt to shorten what the law protects.
        audit_record(
            actor=actor,
            action="site.retention_change",
            target=site,
            ip_address=ip_address,
            outcome="denied",
            details={"from": before, "to": retention_hours},
        )
        raise
    with transaction.atomic():
        Site.objects.filter(pk=site.pk).update(retention_hours=retention_hours)
        audit_record(
            actor=actor,
            action="site.retention_change",
            target=site,
            ip_address=ip_address,
            details={"from": before, "to": retention_hours, "jurisdiction": site.jurisdiction},
        )
    return site
