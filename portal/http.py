"""Request helpers every portal view shares."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models
from django.db.models import QuerySet
from django.http import Http404

from audit.models import AuditEvent
from audit.services import audit_record

ModelT = TypeVar("ModelT", bound=models.Model)


def client_ip(request: Any) -> str | None:
    """The client's address as the web server saw it (a proxy's own header is not trusted)."""
    address = request.META.get("REMOTE_ADDR")
    return str(address) if address else None


def scoped_or_404(
    scoped: QuerySet[ModelT],
    pk: object,
    *,
    request: Any,
    action: str,
    details: dict[str, Any] | None = None,
    message: str = "Not found.",
) -> ModelT:
    """The object `pk` among those the user may see (`scoped`), or an audited refusal and 404.

    Nothing tells an outsider whether the object exists: a hidden and a missing one answer
    alike, and both are recorded as denied.
    """
    found = scoped.filter(pk=pk).first()
    if found is None:
        audit_record(
            actor=request.user,
            action=action,
            ip_address=client_ip(request),
            outcome=AuditEvent.Outcome.DENIED,
            details=details if details is not None else {"id": pk},
        )
        raise Http404(message)
    return found
