"""Reads of sites and cameras, already scoped to what a user may see."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet

from cameras.models import Camera, PoliceStation, Site

if TYPE_CHECKING:
    from abusewatch.typing import AnyUser as User


def site_scope(user: User, prefix: str = "") -> Q | None:
    """The sites a user may see, as a filter on `<prefix>` (a path to a Site).

    None means everything (operators); an empty match means nothing.
    """
    if not user.is_authenticated or not user.is_active:
        return Q(pk__in=[])
    if getattr(user, "is_superuser", False):
        return None
    return Q(**{f"{prefix}admins__id": user.pk})


def sites_visible_to(user: User) -> QuerySet[Site]:
    scope = site_scope(user)
    sites = Site.objects.select_related("police_station")
    return sites if scope is None else sites.filter(scope).distinct()


def sites_managed_by(user: User) -> QuerySet[Site]:
    """Sites whose cameras the user may add and change: the same as those they see."""
    return sites_visible_to(user)


def cameras_visible_to(user: User) -> QuerySet[Camera]:
    scope = site_scope(user, prefix="site__")
    cameras = Camera.objects.select_related("site")
    return cameras if scope is None else cameras.filter(scope).distinct()


def stations_visible_to(user: User) -> QuerySet[PoliceStation]:
    if not user.is_authenticated or not user.is_active:
        return PoliceStation.objects.none()
    if getattr(user, "is_superuser", False):
        return PoliceStation.objects.all()
    return PoliceStation.objects.filter(liaisons__id=user.pk).distinct()
