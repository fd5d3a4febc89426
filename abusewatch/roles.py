"""The four roles of AbuseWatch and how a user's role is decided.

A role is not stored on the user: it follows from what the user is attached to (a site they
administer, a police station they liaise for, an expert profile), so granting or removing an
attachment is the only way to change what someone sees.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


class Role(enum.StrEnum):
    OPERATOR = "operator"
    EXPERT = "expert"
    LIAISON = "liaison"
    CENTRE_ADMIN = "centre_admin"
    NONE = "none"


def role_of(user: AbstractBaseUser | AnonymousUser) -> Role:
    if not user.is_authenticated or not user.is_active:
        return Role.NONE
    if getattr(user, "is_superuser", False):
        return Role.OPERATOR
    from cameras.models import PoliceStation, Site
    from reviews.models import ExpertProfile

    if ExpertProfile.objects.filter(user__pk=user.pk).exists():
        return Role.EXPERT
    if PoliceStation.objects.filter(liaisons__id=user.pk).exists():
        return Role.LIAISON
    if Site.objects.filter(admins__id=user.pk).exists():
        return Role.CENTRE_ADMIN
    return Role.NONE
