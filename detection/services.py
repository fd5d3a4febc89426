"""Writes to cases: the status machine every app moves a case through."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from audit.services import audit_record
from audit.typing import Actor
from detection.model_versions import model_version_register
from detection.models import Case

# bench/bench_pipeline.py still imports model_version_register from here.
__all__ = ["REPORT_CASE_TASK", "IllegalTransition", "case_transition", "model_version_register"]

# The task with which reports reacts to a case that must reach the police; queued by name on
# commit, because reports sits above detection and reviews.
REPORT_CASE_TASK = "reports.report_case"


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
