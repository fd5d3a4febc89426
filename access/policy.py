"""Who may see what: one policy for the rows a user may read and the live messages they hear.

A role is not stored on the user: it follows from what the user is attached to (a site they
administer, `administered_sites`; a police station they liaise for, `liaison_stations`; an
expert profile, `expert_profile`), so granting or removing an attachment is the only way to
change what someone sees. A user may hold several attachments at once; they see the union of
what each allows, never more. Operators (superusers) see everything.

Each kind of object is described once, as relation lookups by name (`Subject`): the path to
the site whose admins see it, to the police station whose liaisons see it, and to the band and
region experts judge it by. From that one description come both sides:
- pull: `scope(user, subject)` filters every selector's queryset;
- push: `groups_for(obj, subject)` names the websocket groups a live message about `obj` goes
  to, and `groups_for_user(user)` the groups a user's socket joins.
So a user hears of an object exactly when the object is in their scope; the tests in
tests/access/ hold the two sides against each other for every role and object.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import Q, QuerySet

from access.typing import AnyUser

OPERATORS_GROUP = "operators"
EXPERTS_ALL_GROUP = "experts.all"
# The one band experts judge: detection's Band.UNCERTAIN, named here by value.
UNCERTAIN_BAND = "uncertain"

ModelT = TypeVar("ModelT", bound=models.Model)


class Role(enum.StrEnum):
    OPERATOR = "operator"
    EXPERT = "expert"
    LIAISON = "liaison"
    CENTRE_ADMIN = "centre_admin"
    NONE = "none"


def site_group(site_id: int) -> str:
    return f"site.{site_id}"


def station_group(station_id: int) -> str:
    return f"station.{station_id}"


def region_group(region: str) -> str:
    # Group names must be ASCII; region names are often Korean.
    digest = hashlib.sha256(region.encode("utf-8")).hexdigest()[:16]
    return f"experts.region.{digest}"


@dataclass(frozen=True)
class Viewer:
    """A user's attachments, read once."""

    user_id: int | None
    active: bool = False
    operator: bool = False
    site_ids: frozenset[int] = frozenset()
    station_ids: frozenset[int] = frozenset()
    is_expert: bool = False
    # None: every region. An expert profile with a malformed value names no region.
    expert_regions: frozenset[str] | None = frozenset()

    @property
    def role(self) -> Role:
        if not self.active:
            return Role.NONE
        if self.operator:
            return Role.OPERATOR
        if self.is_expert:
            return Role.EXPERT
        if self.station_ids:
            return Role.LIAISON
        if self.site_ids:
            return Role.CENTRE_ADMIN
        return Role.NONE

    def groups(self) -> list[str]:
        """The groups this user's websocket may join; none for an outsider."""
        if not self.active:
            return []
        if self.operator:
            return [OPERATORS_GROUP]
        groups = [site_group(pk) for pk in sorted(self.site_ids)]
        groups += [station_group(pk) for pk in sorted(self.station_ids)]
        if self.is_expert:
            if self.expert_regions is None:
                groups.append(EXPERTS_ALL_GROUP)
            else:
                groups += [region_group(region) for region in sorted(self.expert_regions)]
        return groups


def _expert_regions(regions: object) -> frozenset[str] | None:
    # Only the empty list means every region: {}, "" or null written past the form's
    # validation are just as falsy, and must grant nothing rather than everything.
    if not isinstance(regions, list):
        return frozenset()
    if not regions:
        return None
    return frozenset(region for region in regions if isinstance(region, str) and region.strip())


def viewer_of(user: AnyUser | None) -> Viewer:
    """Read what a user is attached to, through the relations' names on the user model."""
    if user is None or not user.is_authenticated or not user.is_active or user.pk is None:
        return Viewer(user_id=None)
    if getattr(user, "is_superuser", False):
        return Viewer(user_id=user.pk, active=True, operator=True)
    users = get_user_model().objects.filter(pk=user.pk)
    sites = users.filter(administered_sites__isnull=False).values_list(
        "administered_sites", flat=True
    )
    stations = users.filter(liaison_stations__isnull=False).values_list(
        "liaison_stations", flat=True
    )
    profile = users.values_list("expert_profile__pk", "expert_profile__regions").first()
    is_expert = profile is not None and profile[0] is not None
    return Viewer(
        user_id=user.pk,
        active=True,
        site_ids=frozenset(int(pk) for pk in sites),
        station_ids=frozenset(int(pk) for pk in stations),
        is_expert=is_expert,
        expert_regions=_expert_regions(profile[1]) if profile is not None and is_expert else None,
    )


def role_of(user: AnyUser) -> Role:
    return viewer_of(user).role


def groups_for_user(user: AnyUser) -> list[str]:
    return viewer_of(user).groups()


# --- The subjects: where each kind of object keeps its site, station, band and region ---------


@dataclass(frozen=True)
class Subject:
    """Relation lookups from one kind of object; "" is the object itself, None is "has none"."""

    site: str | None = None
    station: str | None = None
    band: str | None = None
    region: str | None = None


def _path(prefix: str, rest: str) -> str:
    return f"{prefix}__{rest}" if prefix else rest


SITES = Subject(site="")
CAMERAS = Subject(site="site")
STATIONS = Subject(station="")
# The station a report went to keeps its case even after the site moves to another station;
# a case not yet reported is no station's.
CASES = Subject(
    site="camera__site",
    station="police_report__station",
    band="band",
    region="camera__site__region",
)
REPORTS = Subject(station="station")
# Footage: a site's admins see their cameras' segments (others see a segment only through a
# case they may see: detection.selectors.segments_visible_to).
SEGMENTS = Subject(site="camera__site")
DETECTIONS = Subject(site="segment__camera__site")
# A parent's viewing request is the centre's business: its admins (and operators) only.
VIEWING_REQUESTS = Subject(site="site")

_NOTHING = Q(pk__in=[])


def _expert_scope(viewer: Viewer, subject: Subject) -> Q:
    if subject.band is None or not viewer.is_expert:
        return _NOTHING
    scope = Q(**{subject.band: UNCERTAIN_BAND})
    if viewer.expert_regions is not None:
        assert subject.region is not None, "a subject with a band names its region too"
        scope &= Q(**{f"{subject.region}__in": sorted(viewer.expert_regions)})
    return scope


def scope(user: AnyUser | Viewer, subject: Subject) -> Q | None:
    """The objects of `subject` the user may see, as a filter; None means everything."""
    viewer = user if isinstance(user, Viewer) else viewer_of(user)
    if not viewer.active:
        return _NOTHING
    if viewer.operator:
        return None
    allowed = _NOTHING
    if subject.site is not None:
        allowed |= Q(**{_path(subject.site, "admins__id"): viewer.user_id})
    if subject.station is not None:
        allowed |= Q(**{_path(subject.station, "liaisons__id"): viewer.user_id})
    return allowed | _expert_scope(viewer, subject)


def visible(
    queryset: QuerySet[ModelT], user: AnyUser | Viewer, subject: Subject
) -> QuerySet[ModelT]:
    """`queryset` narrowed to what the user may see."""
    allowed = scope(user, subject)
    if allowed is None:
        return queryset
    # Filter on ids so the joins across attachments cannot duplicate rows.
    ids = queryset.model._default_manager.filter(allowed).values("pk")
    return queryset.filter(pk__in=ids)


def groups_for(
    obj: models.Model, subject: Subject, *, known: Mapping[str, Any] | None = None
) -> list[str]:
    """The websocket groups that hear of `obj`: exactly those of the users who may see it.

    `known`: what the caller has just read of the object's attachments, by name ("site",
    "station", "band", "region": the site's and station's ids). When it covers every
    attachment the subject has, no query is made (the inference worker announces every scored
    window); otherwise the attachments are read as usual.
    """
    paths = {
        "site": _path(subject.site, "id") if subject.site is not None else None,
        "station": _path(subject.station, "id") if subject.station is not None else None,
        "band": subject.band,
        "region": subject.region,
    }
    wanted = {name: path for name, path in paths.items() if path is not None}
    if known is not None and all(name in known for name in wanted):
        row: Mapping[str, Any] = {path: known[name] for name, path in wanted.items()}
    else:
        row = type(obj)._default_manager.filter(pk=obj.pk).values(*wanted.values()).first() or {}
    site, station, band, region = (
        row.get(path) if path is not None else None for path in paths.values()
    )
    groups = [OPERATORS_GROUP]
    if site is not None:
        groups.append(site_group(int(site)))
    if station is not None:
        groups.append(station_group(int(station)))
    if band == UNCERTAIN_BAND:
        groups += [EXPERTS_ALL_GROUP, region_group(str(region or ""))]
    return groups


# --- Narrower rights, each built on the same attachments --------------------------------------


def review_scope(user: AnyUser | Viewer) -> Q:
    """Uncertain cases the user may judge: those of an expert's regions, all for operators.

    Built from the expert profile alone, not from everything the user may see: an expert who
    also administers a centre never judges that centre's cases (a conflict of interest), even
    though they see them as its admin.
    """
    viewer = user if isinstance(user, Viewer) else viewer_of(user)
    if not viewer.active:
        return _NOTHING
    if viewer.operator:
        return Q(**{str(CASES.band): UNCERTAIN_BAND})
    if not viewer.is_expert:
        return _NOTHING
    conflict = Q(**{_path(str(CASES.site), "admins__id"): viewer.user_id})
    return _expert_scope(viewer, CASES) & ~conflict


def is_reviewer(user: AnyUser) -> bool:
    viewer = viewer_of(user)
    return viewer.active and (viewer.operator or viewer.is_expert)


def may_view_unblurred(user: AnyUser) -> bool:
    """Faces of bystanders stay pixelated for everyone but experts and operators."""
    return role_of(user) in {Role.EXPERT, Role.OPERATOR}


def may_see_reporter(user: AnyUser, *, station_id: int) -> bool:
    """Which staff member triggered or confirmed a police report is for the police who
    received it and for operators only: the centre (where the suspect may work) sees that the
    centre reported, never who (아동학대범죄의 처벌 등에 관한 특례법 제10조 제3항)."""
    viewer = viewer_of(user)
    if not viewer.active:
        return False
    return viewer.operator or station_id in viewer.station_ids
