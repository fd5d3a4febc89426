"""Every URL of the project, walked from the resolver, requested by everyone who must not see
what it serves (issue #16, the outsider walk).

Each pattern must match one rule below, or the test fails naming it: a new URL cannot be
forgotten. Path parameters are filled with real objects of the OTHER side (Busan's site, camera,
case, segment and report; Haeundae's station), and each URL is requested once by each of:
anonymous, an outsider with no role, the admin of the other site, the liaison of the other
station and an expert of the other region. Fails on any 500; on any 2xx for a URL naming an
object, or for anonymous on anything not public; and on any 2xx whose body carries the other
side's data (its names).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import pytest
from django.core import signing
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone

from tests import factories
from tests.conftest import World
from viewings.models import TakeoutCopy, ViewingAttachment
from viewings.services import viewing_request_create

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Rule:
    # public:  may answer anyone (sign-in page, health, language switch), without data
    # list:    a signed-in user's own list: 2xx allowed, but never the other side's data
    # object:  names one of the other side's objects: no 2xx for any of the roles below
    # admin:   Django admin: staff only, everyone here is sent to its sign-in page
    kind: str
    method: str = "get"
    params: dict[str, Callable[[Any], Any]] = field(default_factory=dict)


OTHER_SITE = {"pk": lambda w: w.site_b.pk, "site_pk": lambda w: w.site_b.pk}
OTHER_CAMERA = {"pk": lambda w: w.camera_b.pk}
OTHER_CASE = {"pk": lambda w: w.uncertain_case_b.pk}
OTHER_REPORT = {"pk": lambda w: w.report_b.pk}
OTHER_SEGMENT = {"pk": lambda w: w.segment_b.pk, "kind": lambda w: "original"}
OTHER_VIEWING = {"pk": lambda w: w.viewing_b.pk, "site_pk": lambda w: w.site_b.pk}
FORMAT = {"format": lambda w: "json"}

# (regular expression over the route as the resolver shows it, rule); first match wins.
RULES: list[tuple[str, Rule]] = [
    (r"^$", Rule("list")),  # the home page: each role's own start page
    (r"^ops/$", Rule("object")),  # operators only
    (r"^accounts/login/$", Rule("public")),
    (r"^accounts/logout/$", Rule("public", "post")),
    (r"^i18n/setlang/$", Rule("public", "post")),
    (r"^healthz$", Rule("public")),
    (r"^metrics$", Rule("object")),  # needs METRICS_TOKEN: nobody here has it
    (r"^api/auth/token/$", Rule("public", "post")),
    (r"^admin/login/$", Rule("public")),
    (r"^admin/", Rule("admin")),
    (r"^cases/<int:pk>/$", Rule("object", params=OTHER_CASE)),
    (r"^sites/$", Rule("list")),
    (r"^sites/<int:pk>/$", Rule("object", params=OTHER_SITE)),
    (r"^sites/<int:site_pk>/cameras/new/$", Rule("object", params=OTHER_SITE)),
    (r"^sites/cameras/<int:pk>/(edit/)?$", Rule("object", params=OTHER_CAMERA)),
    (r"^sites/<int:pk>/cameras/$", Rule("object", params=OTHER_SITE)),
    (r"^sites/cameras/<int:pk>/(snapshot\.jpg|recent/)$", Rule("object", params=OTHER_CAMERA)),
    (r"^reviews/$", Rule("list")),
    (r"^reviews/agreement/$", Rule("list")),
    (r"^reviews/cases/<int:pk>/$", Rule("object", params=OTHER_CASE)),
    (r"^reviews/cases/<int:pk>/(claim|release|decide)/$", Rule("object", "post", OTHER_CASE)),
    (r"^reports/$", Rule("list")),
    (r"^reports/<int:pk>/$", Rule("object", params=OTHER_REPORT)),
    (r"^reports/<int:pk>/(status|evidence)/$", Rule("object", "post", OTHER_REPORT)),
    (
        r"^reports/evidence/<str:token>/$",
        Rule("object", params={"token": lambda w: w.evidence_token_b}),
    ),
    (r"^api/\^(sites|cameras|cases|segments|reports)/\$$", Rule("list")),
    (r"^api/\^(sites|cameras|cases|segments|reports)\\\.", Rule("list", params=FORMAT)),
    (r"^api/\^sites/\(\?P<pk>", Rule("object", params={**OTHER_SITE, **FORMAT})),
    (r"^api/\^cameras/\(\?P<pk>[^$]*upload-token", Rule("object", "post", OTHER_CAMERA | FORMAT)),
    (r"^api/\^cameras/\(\?P<pk>", Rule("object", params={**OTHER_CAMERA, **FORMAT})),
    (r"^api/\^cases/\(\?P<pk>", Rule("object", params={**OTHER_CASE, **FORMAT})),
    (r"^api/\^segments/\(\?P<pk>", Rule("object", params={**OTHER_SEGMENT, **FORMAT})),
    (r"^api/\^reports/\(\?P<pk>[^$]*status", Rule("object", "post", OTHER_REPORT | FORMAT)),
    (r"^api/\^reports/\(\?P<pk>", Rule("object", params={**OTHER_REPORT, **FORMAT})),
    (r"^api/$", Rule("list")),
    (r"^api/<drf_format_suffix:format>$", Rule("list", params={"format": lambda w: ".json"})),
    (r"^api/segments/<int:pk>/<str:kind>\.mp4$", Rule("object", params=OTHER_SEGMENT)),
    (r"^api/edge/clips/$", Rule("object", "post")),
    (r"^api/me/$", Rule("list")),
    (r"^api/(schema|docs|redoc)/$", Rule("list")),
    (r"^ops/segments/<int:pk>/working-copy\.mp4$", Rule("object", params=OTHER_SEGMENT)),
    (r"^sites/cases/<int:pk>/$", Rule("object", params=OTHER_CASE)),
    (r"^sites/<int:pk>/retention/$", Rule("object", params=OTHER_SITE)),
    (r"^viewings/site/<int:site_pk>/(access-log/)?$", Rule("object", params=OTHER_SITE)),
    (r"^viewings/<int:pk>/$", Rule("object", params=OTHER_VIEWING)),
    (
        r"^viewings/<int:pk>/<str:step>/$",
        Rule("object", "post", {**OTHER_VIEWING, "step": lambda w: "close"}),
    ),
    (
        r"^viewings/<int:pk>/attachments/",
        Rule(
            "object",
            params={**OTHER_VIEWING, "attachment_pk": lambda w: w.viewing_attachment_b.pk},
        ),
    ),
    (r"^viewings/copies/<int:pk>/$", Rule("object", params={"pk": lambda w: w.takeout_b.pk})),
]

ADMIN_PARAMS = {
    "object_id": "1",
    "id": "1",
    "content_type_id": "1",
    "app_label": "cameras",
    "url": "nowhere/",
}
# What the other side's data looks like in a body: the names of its site, station and camera.
OTHER_SIDE_MARKERS = ("Maple", "Haeundae", "Playroom B")
ROLES = ("anonymous", "charlie", "alice", "lee", "sam")


def walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def rule_for(route: str) -> Rule | None:
    return next((rule for regex, rule in RULES if re.search(regex, route)), None)


def concrete_url(route: str, values: dict[str, Any]) -> str:
    """The route with every converter and named group replaced by its value."""

    def value(name: str) -> str:
        if name not in values:
            raise KeyError(f"no value for <{name}> in {route}")
        return str(values[name])

    # Regular-expression groups first: their "(?P<name>" would look like a converter.
    url = re.sub(r"\(\?P<(\w+)>(?:[^()]|\([^()]*\))*\)", lambda m: value(m.group(1)), route)
    url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: value(m.group(1)), url)
    url = url.replace("^", "").replace("$", "").replace("/?", "/").replace("\\.", ".")
    return "/" + url


@dataclass
class OtherSide(World):
    """The world plus objects of the other side (Busan) that only this walk needs."""

    report_b: Any = None
    segment_b: Any = None
    evidence_token_b: str = ""
    viewing_b: Any = None
    viewing_attachment_b: Any = None
    takeout_b: Any = None


@pytest.fixture
def other_side(world: World) -> OtherSide:
    violent_b = factories.CaseFactory(camera=world.camera_b, band="violent", peak_score=0.97)
    # A well-signed link to a package, issued to Busan's liaison: nobody else may use it.
    from reports import links

    # A parent's viewing request at Busan's centre, with a document and a take-out copy.
    viewing_b = viewing_request_create(
        site=world.site_b,
        camera=world.camera_b,
        group_or_room="Maple room",
        child_label="child",
        guardian_name="guardian",
        guardian_contact="010-0000-0000",
        starts_at=timezone.now() - dt.timedelta(hours=1),
        ends_at=timezone.now(),
        reason="a bruise",
        actor=world.bob,
    )
    attachment_b = ViewingAttachment.objects.create(
        request=viewing_b,
        file=ContentFile(b"%PDF-1.4 Maple", name="note.pdf"),
        name="note.pdf",
        content_type="application/pdf",
        size=14,
        sha256="0" * 64,
    )
    takeout_b = TakeoutCopy.objects.create(
        request=viewing_b,
        file=ContentFile(b"Maple footage", name="copy.mp4"),
        sha256="0" * 64,
        size=13,
        recipient="guardian",
        child_box=[0, 0, 1, 1],
        watermark="Maple",
    )
    return OtherSide(
        **{item.name: getattr(world, item.name) for item in fields(World)},
        viewing_b=viewing_b,
        viewing_attachment_b=attachment_b,
        takeout_b=takeout_b,
        report_b=factories.PoliceReportFactory(case=violent_b, station=world.station_b),
        segment_b=factories.SegmentFactory(camera=world.camera_b),
        evidence_token_b=signing.dumps(
            {"p": 1, "u": world.pat.pk}, salt=links._SALT, compress=True
        ),
    )


def client_for(world: World, role: str) -> Client:
    client = Client(raise_request_exception=False)
    if role != "anonymous":
        client.force_login(getattr(world, role))
    return client


def test_every_url_is_classified_and_refuses_outsiders(other_side: OtherSide) -> None:
    world = other_side
    unclassified: list[str] = []
    failures: list[str] = []
    requests = 0
    shadowed: list[str] = []
    clients = {role: client_for(world, role) for role in ROLES}
    for route, pattern in walk(get_resolver().url_patterns):
        rule = rule_for(route)
        if rule is None:
            unclassified.append(route)
            continue
        params = {name: make(world) for name, make in rule.params.items()}
        if rule.kind == "admin":
            params = {**ADMIN_PARAMS, **params}
        url = concrete_url(route, params)
        if resolve(url).func != pattern.callback:
            # Served by an earlier pattern (the admin's own sign-in page, replaced by ours),
            # which the walk requests itself.
            shadowed.append(route)
            continue
        for role, client in clients.items():
            response = getattr(client, rule.method)(url)
            requests += 1
            if role != "anonymous" and "_auth_user_id" not in client.session:
                client.force_login(getattr(world, role))  # signed out (logout): back in
            status = response.status_code
            body = b"" if getattr(response, "streaming", False) else response.content
            where = f"{role} {rule.method.upper()} {url} ({route}) -> {status}"
            if status >= 500 and not (status == 503 and rule.kind == "public"):
                # 503 is /healthz saying a part is down (no broker in this test): an answer.
                failures.append(f"{where}: server error")
            elif 200 <= status < 300:
                if rule.kind in {"object", "admin"}:
                    failures.append(f"{where}: answered an object that is not theirs")
                elif role == "anonymous" and rule.kind != "public":
                    failures.append(f"{where}: answered anonymous")
                text = body.decode("utf-8", "replace")
                leaked = [marker for marker in OTHER_SIDE_MARKERS if marker in text]
                if leaked:
                    failures.append(f"{where}: carries the other side's {leaked}")
    assert not unclassified, f"URL patterns with no rule in {__name__}: {unclassified}"
    assert not failures, "\n".join(failures)
    assert len(shadowed) <= 2, shadowed
    assert requests >= len(ROLES) * 60  # every pattern, every role (one request each)
