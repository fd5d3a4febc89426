"""Shared fixtures: a small world with a user of every role and an outsider.

Named users, as in permission tests everywhere in this suite:
- alice: centre admin of `site_a` (Seoul, station_a)      - bob: centre admin of `site_b` (Busan)
- erin: expert for every region                            - sam: expert for Seoul only
- lee: police liaison of station_a                         - pat: police liaison of station_b
- olga: operator (superuser)                               - charlie: signed in, no role at all
"""

from __future__ import annotations

import contextlib
import copy
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from cameras.models import Camera, PoliceStation, Site
from detection.models import Case
from reports.models import PoliceReport
from tests import factories


@pytest.fixture(autouse=True)
def _own_cache_namespace(settings: Any) -> None:
    """Each test keeps its cache entries (failed sign-in counts) under a prefix of its own.

    In the PostgreSQL run the cache is a Redis shared with earlier runs and other checkouts;
    counts left there by another test or run must not lock this test's accounts.
    """
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"test-{uuid.uuid4().hex}"
    settings.CACHES = caches


@pytest.fixture
def commit_and_react(django_capture_on_commit_callbacks: Any) -> Callable[[], Any]:
    """Run, when the block ends, what its commits would start: on-commit callbacks, and the
    Celery tasks they queue, in this process (a stand-in for the worker). This is how reports
    reacts to a case that must reach the police (`reports.report_case`, queued by name)."""
    from abusewatch.celery import app as celery_app

    @contextlib.contextmanager
    def react() -> Iterator[None]:
        previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
        celery_app.conf.task_always_eager = True
        celery_app.conf.task_eager_propagates = True
        try:
            with django_capture_on_commit_callbacks(execute=True):
                yield
        finally:
            celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous

    return react


@dataclass
class World:
    station_a: PoliceStation
    station_b: PoliceStation
    site_a: Site
    site_b: Site
    camera_a: Camera
    camera_b: Camera
    uncertain_case_a: Case
    uncertain_case_b: Case
    violent_case_a: Case
    report_a: PoliceReport
    alice: User
    bob: User
    erin: User
    sam: User
    lee: User
    pat: User
    olga: User
    charlie: User


@pytest.fixture
def world(db: None) -> World:
    station_a = factories.PoliceStationFactory(name="Gangnam", region="Seoul")
    station_b = factories.PoliceStationFactory(name="Haeundae", region="Busan")
    site_a = factories.SiteFactory(name="Sunflower", region="Seoul", police_station=station_a)
    site_b = factories.SiteFactory(name="Maple", region="Busan", police_station=station_b)
    camera_a = factories.CameraFactory(site=site_a, name="Playroom A")
    camera_b = factories.CameraFactory(site=site_b, name="Playroom B")
    alice = factories.UserFactory(username="alice")
    bob = factories.UserFactory(username="bob")
    site_a.admins.add(alice)
    site_b.admins.add(bob)
    erin = factories.UserFactory(username="erin")
    factories.ExpertProfileFactory(user=erin, regions=[])
    sam = factories.UserFactory(username="sam")
    factories.ExpertProfileFactory(user=sam, regions=["Seoul"])
    lee = factories.UserFactory(username="lee")
    pat = factories.UserFactory(username="pat")
    station_a.liaisons.add(lee)
    station_b.liaisons.add(pat)
    olga = factories.UserFactory(username="olga", is_superuser=True, is_staff=True)
    charlie = factories.UserFactory(username="charlie")
    violent_case_a = factories.CaseFactory(
        camera=camera_a, band="violent", peak_score=0.97, status=Case.Status.REPORTED
    )
    return World(
        station_a=station_a,
        station_b=station_b,
        site_a=site_a,
        site_b=site_b,
        camera_a=camera_a,
        camera_b=camera_b,
        uncertain_case_a=factories.CaseFactory(camera=camera_a),
        uncertain_case_b=factories.CaseFactory(camera=camera_b),
        violent_case_a=violent_case_a,
        report_a=factories.PoliceReportFactory(case=violent_case_a, station=station_a),
        alice=alice,
        bob=bob,
        erin=erin,
        sam=sam,
        lee=lee,
        pat=pat,
        olga=olga,
        charlie=charlie,
    )


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def api_as(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


# Shared fixtures of the app folders: real parts (a model, a Celery worker, an RTSP server,
# live sockets), portal footage, per-test media storage and eager tasks. Imported last: they
# use World, defined above.
from tests.support.footage import footage  # noqa: E402, F401
from tests.support.live import (  # noqa: E402, F401
    active_model,
    celery_worker,
    clip_folder,
    django_db_modify_db_settings,
    fast_reconnect,
    listen,
    long_clip,
    model_dir,
    purge_queues,
    rtsp_server,
)
from tests.support.storage import eager_tasks, media_root  # noqa: E402, F401
