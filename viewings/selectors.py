"""Reads of viewing requests, already scoped by the one access policy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from access.policy import VIEWING_REQUESTS, visible
from viewings.models import ViewingRequest

if TYPE_CHECKING:
    from access.typing import AnyUser as User


def viewing_requests_visible_to(user: User) -> QuerySet[ViewingRequest]:
    return visible(
        ViewingRequest.objects.select_related("site", "camera", "police_report"),
        user,
        VIEWING_REQUESTS,
    )
