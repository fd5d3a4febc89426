from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from detection.models import Case
from reports.models import AuditEvent, EvidencePackage, PoliceReport

if TYPE_CHECKING:
    from abusewatch.typing import Actor

GENESIS_HASH = "0" * 64
_MAX_CHAIN_RETRIES = 20
# Any fixed 64-bit key will do; it only has to be the same in every process ("AW_AUDIT").
_AUDIT_CHAIN_LOCK_KEY = 0x41575F4155444954


def _event_digest(
    *,
    prev_hash: str,
    actor_id: int | None,
    actor_label: str,
    action: str,
    object_type: str,
    object_id: str,
    occurred_at_iso: str,
    ip_address: str | None,
    outcome: str,
    details: dict[str, Any],
) -> str:
    canonical = json.dumps(
        {
            "prev_hash": prev_hash,
            "actor_id": actor_id,
            "actor_label": actor_label,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "occurred_at": occurred_at_iso,
            "ip_address": ip_address,
            "outcome": outcome,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _digest_of(event: AuditEvent) -> str:
    return _event_digest(
        prev_hash=event.prev_hash,
        actor_id=event.actor_id,
        actor_label=event.actor_label,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        occurred_at_iso=event.occurred_at.isoformat(),
        ip_address=event.ip_address,
        outcome=event.outcome,
        details=event.details,
    )


def _lock_audit_chain() -> None:
    # Retrying on the unique `prev_hash` alone starved writers on PostgreSQL: under contention
    # a loser could lose every retry. Queueing on one lock makes appends strictly sequential.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_AUDIT_CHAIN_LOCK_KEY])


def audit_record(
    *,
    actor: Actor,
    action: str,
    target: models.Model | None = None,
    ip_address: str | None = None,
    outcome: str = AuditEvent.Outcome.SUCCESS,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the audit chain.

    On PostgreSQL appenders queue on a transaction-level advisory lock, held until the
    surrounding transaction commits, so each one reads a head that is committed and final.
    Elsewhere two writers that read the same head collide on the unique `prev_hash` and the
    loser re-reads the head and tries again. Either way the chain never forks.
    """
    actor_id = actor.pk if actor is not None and actor.is_authenticated else None
    actor_label = actor.get_username() if actor is not None and actor.is_authenticated else "system"
    # Round-trip through JSON so what is hashed is exactly what the database gives back.
    details_json = json.loads(json.dumps(details or {}, default=str))
    # The same for the address: the column stores IPv6 in its short lower-case form
    # ("2001:DB8:0:0::1" comes back as "2001:db8::1"), and a hash over the long form would
    # read as tampering.
    ip_address = AuditEvent._meta.get_field("ip_address").get_prep_value(ip_address)
    object_type = target._meta.label if target is not None else ""
    object_id = str(target.pk) if target is not None else ""
    for attempt in range(_MAX_CHAIN_RETRIES):
        try:
            with transaction.atomic():
                _lock_audit_chain()
                head = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
                event = AuditEvent(
                    actor_id=actor_id,
                    actor_label=actor_label,
                    action=action,
                    object_type=object_type,
                    object_id=object_id,
                    occurred_at=timezone.now(),
                    ip_address=ip_address,
                    outcome=outcome,
                    details=details_json,
                    prev_hash=head or GENESIS_HASH,
                )
                event.hash = _digest_of(event)
                event.save(force_insert=True)
        except IntegrityError:
            # Only reachable where the lock is not available (SQLite): back off with jitter so
            # colliding writers stop retrying in step.
            time.sleep(random.uniform(0, 0.005 * (attempt + 1)))  # noqa: S311 (jitter, not a secret)
            continue
        return event
    raise RuntimeError("audit chain is too busy: could not append an event")


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    reason: str


def audit_verify_chain(events: models.QuerySet[AuditEvent] | None = None) -> ChainBreak | None:
    """Walk the chain from its start; return the first event that does not fit, if any."""
    expected_prev = GENESIS_HASH
    queryset = events if events is not None else AuditEvent.objects.all()
    for event in queryset.order_by("id").iterator():
        if event.prev_hash != expected_prev:
            return ChainBreak(event.pk, "links to a hash that is not the previous event's")
        if _digest_of(event) != event.hash:
            return ChainBreak(event.pk, "content does not match its hash")
        expected_prev = event.hash
    return None


def client_ip(request: Any) -> str | None:
    """The client's address as the web server saw it (a proxy's own header is not trusted)."""
    address = request.META.get("REMOTE_ADDR")
    return str(address) if address else None


@transaction.atomic
def police_report_send(*, case: Case, reason: str, actor: Actor = None) -> PoliceReport:
    """Report a case to its site's police station, once: a second call returns the first report."""
    locked_case = Case.objects.select_for_update().select_related("camera__site").get(pk=case.pk)
    existing = PoliceReport.objects.filter(case=locked_case).first()
    if existing is not None:
        return existing
    report = PoliceReport.objects.create(
        case=locked_case,
        station_id=locked_case.camera.site.police_station_id,
        reason=reason,
        sent_at=timezone.now(),
    )
    audit_record(
        actor=actor,
        action="police_report.send",
        target=report,
        details={"case": locked_case.pk, "station": report.station_id, "reason": reason},
    )
    return report


@transaction.atomic
def police_report_set_status(
    *,
    report: PoliceReport,
    to: str,
    actor: Actor,
    note: str = "",
    ip_address: str | None = None,
) -> PoliceReport:
    locked = PoliceReport.objects.select_for_update().get(pk=report.pk)
    if to not in PoliceReport.TRANSITIONS[locked.status]:
        raise ValidationError({"status": f"A report that is {locked.status} cannot become {to}."})
    previous = locked.status
    locked.status = to
    stamp_field = {
        PoliceReport.Status.ACKNOWLEDGED: "acknowledged_at",
        PoliceReport.Status.DISPATCHED: "dispatched_at",
        PoliceReport.Status.CLOSED: "closed_at",
    }[PoliceReport.Status(to)]
    setattr(locked, stamp_field, timezone.now())
    if isinstance(actor, User):
        locked.handled_by = actor
    if note:
        locked.note = note
    locked.full_clean()
    locked.save()
    audit_record(
        actor=actor,
        action="police_report.status",
        target=locked,
        ip_address=ip_address,
        details={"from": previous, "to": to},
    )
    return locked


@transaction.atomic
def police_report_update(
    *,
    report: PoliceReport,
    to: str,
    actor: Actor,
    note: str = "",
    ip_address: str | None = None,
) -> PoliceReport:
    """A liaison's status update: move the report, close its case when the report closes,
    and tell every open portal."""
    from detection.alerts import broadcast_case, broadcast_report
    from detection.services import case_transition

    updated = police_report_set_status(
        report=report, to=to, actor=actor, note=note, ip_address=ip_address
    )
    case = updated.case
    if to == PoliceReport.Status.CLOSED and case.can_move_to(Case.Status.CLOSED):
        case_transition(case=case, to=Case.Status.CLOSED, actor=actor, ip_address=ip_address)
        broadcast_case(case, event="case.status")
    broadcast_report(updated)
    return updated


def evidence_package_create(
    *, report: PoliceReport, actor: Actor, ip_address: str | None = None
) -> EvidencePackage:
    """Build and store the evidence package of a report; its download links expire."""
    import datetime as dt
    import tempfile
    from pathlib import Path

    from django.conf import settings
    from django.core.files import File

    from abusewatch.hashing import file_sha256
    from reports.evidence import build_package

    with tempfile.TemporaryDirectory(prefix="evidence-") as tmp:
        path = Path(tmp) / f"evidence-report-{report.pk}.zip"
        with path.open("wb") as handle:
            manifest = build_package(report, handle)
        digest = file_sha256(path)
        with transaction.atomic():
            package = EvidencePackage(
                report=report,
                sha256=digest,
                size=path.stat().st_size,
                created_by=actor if isinstance(actor, User) else None,
                expires_at=timezone.now() + dt.timedelta(minutes=settings.EVIDENCE_LINK_MINUTES),
            )
            stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
            with path.open("rb") as handle:
                package.file.save(
                    f"report-{report.pk}-{stamp}-{digest[:12]}.zip", File(handle), save=False
                )
            package.full_clean()
            package.save()
            audit_record(
                actor=actor,
                action="evidence_package.create",
                target=package,
                ip_address=ip_address,
                details={
                    "report": report.pk,
                    "case": report.case_id,
                    "sha256": digest,
                    "files": len(manifest["files"]),
                },
            )
    return package
