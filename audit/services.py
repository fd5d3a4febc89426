"""The audit trail: append one event to the hash chain, and walk the chain to check it."""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.typing import Actor

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
