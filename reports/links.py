"""Per-user, expiring download links for evidence packages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core import signing
from django.urls import reverse

if TYPE_CHECKING:
    from access.typing import AnyUser
    from reports.models import EvidencePackage

_SALT = "reports.evidence-download"


@dataclass(frozen=True)
class LinkClaim:
    package: int
    user: int


def evidence_link(package: EvidencePackage, user: AnyUser) -> str:
    token = signing.dumps({"p": package.pk, "u": user.pk}, salt=_SALT, compress=True)
    return reverse("evidence-download", kwargs={"token": token})


def read_evidence_token(token: str) -> LinkClaim | None:
    """The package and user a token names, or None when it is forged or too old."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=settings.EVIDENCE_LINK_MINUTES * 60)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    package, user = data.get("p"), data.get("u")
    if not isinstance(package, int) or not isinstance(user, int):
        return None
    return LinkClaim(package=package, user=user)
