"""Reads of sites and cameras, already scoped to what a user may see."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import QuerySet

from access.policy import CAMERAS, SITES, STATIONS, visible
from cameras.models import Camera, PoliceStation, Site

if TYPE_CHECKING:
    from access.typing import AnyUser as User


def sites_visible_to(user: User) -> QuerySet[Site]:
    return visible(Site.objects.select_related("police_station"), user, SITES)


def sites_managed_by(user: User) -> QuerySet[Site]:
    """Sites whose cameras the user may add and change: the same as those they see."""
    return sites_visible_to(user)


def cameras_visible_to(user: User) -> QuerySet[Camera]:
    return visible(Camera.objects.select_related("site"), user, CAMERAS)


def stations_visible_to(user: User) -> QuerySet[PoliceStation]:
    return visible(PoliceStation.objects.all(), user, STATIONS)
