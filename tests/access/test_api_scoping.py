"""Every API endpoint, tried by its owner and by outsiders.

An outsider gets 404 for an object (its existence is not revealed) and an empty list, an
anonymous client gets 401/403.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.conftest import World, api_as

pytestmark = pytest.mark.django_db


def ids(response) -> set[int]:
    return {row["id"] for row in response.json()["results"]}


def test_anonymous_gets_nothing(world: World):
    client = APIClient()
    for url in [
        "/api/sites/",
        "/api/cameras/",
        "/api/cases/",
        "/api/segments/",
        "/api/reports/",
        "/api/me/",
    ]:
        assert client.get(url).status_code in {401, 403}, url


@pytest.mark.parametrize(
    ("username", "sites", "cameras"),
    [
        ("alice", {"site_a"}, {"camera_a"}),
        ("bob", {"site_b"}, {"camera_b"}),
        ("olga", {"site_a", "site_b"}, {"camera_a", "camera_b"}),
        ("charlie", set(), set()),
        ("erin", set(), set()),
        ("lee", set(), set()),
    ],
)
def test_sites_and_cameras_are_scoped(world: World, username, sites, cameras):
    client = api_as(getattr(world, username))
    assert ids(client.get("/api/sites/")) == {getattr(world, s).pk for s in sites}
    assert ids(client.get("/api/cameras/")) == {getattr(world, c).pk for c in cameras}


@pytest.mark.parametrize(
    ("username", "cases"),
    [
        ("alice", {"uncertain_case_a", "violent_case_a"}),
        ("bob", {"uncertain_case_b"}),
        ("erin", {"uncertain_case_a", "uncertain_case_b"}),
        ("sam", {"uncertain_case_a"}),
        ("lee", {"violent_case_a"}),
        ("pat", set()),
        ("olga", {"uncertain_case_a", "uncertain_case_b", "violent_case_a"}),
        ("charlie", set()),
    ],
)
def test_cases_are_scoped_by_role(world: World, username, cases):
    client = api_as(getattr(world, username))
    assert ids(client.get("/api/cases/")) == {getattr(world, c).pk for c in cases}


@pytest.mark.parametrize(
    ("username", "status"),
    [("alice", 200), ("olga", 200), ("bob", 404), ("charlie", 404), ("erin", 404), ("pat", 404)],
)
def test_site_and_camera_detail(world: World, username, status):
    client = api_as(getattr(world, username))
    assert client.get(f"/api/sites/{world.site_a.pk}/").status_code == status
    assert client.get(f"/api/cameras/{world.camera_a.pk}/").status_code == status


@pytest.mark.parametrize(
    ("username", "status"),
    [("lee", 200), ("olga", 200), ("pat", 404), ("alice", 404), ("erin", 404), ("charlie", 404)],
)
def test_report_detail(world: World, username, status):
    client = api_as(getattr(world, username))
    assert client.get(f"/api/reports/{world.report_a.pk}/").status_code == status


@pytest.mark.parametrize(
    ("username", "status"), [("lee", 200), ("pat", 404), ("charlie", 404), ("alice", 404)]
)
def test_report_status_update_is_the_stations_own(world: World, username, status):
    client = api_as(getattr(world, username))
    response = client.post(
        f"/api/reports/{world.report_a.pk}/status/", {"status": "acknowledged"}, format="json"
    )
    assert response.status_code == status
    world.report_a.refresh_from_db()
    assert (world.report_a.status == "acknowledged") == (status == 200)


def test_report_status_refuses_illegal_moves_and_nonsense(world: World):
    client = api_as(world.lee)
    url = f"/api/reports/{world.report_a.pk}/status/"
    assert client.post(url, {"status": "sent"}, format="json").status_code == 400
    assert client.post(url, {"status": ["dispatched"]}, format="json").status_code == 400
    assert client.post(url, {"status": "closed"}, format="json").status_code == 200
    response = client.post(url, {"status": "acknowledged"}, format="json")
    assert response.status_code == 400 and "status" in response.json()


@pytest.mark.parametrize(
    ("username", "status"),
    [("alice", 200), ("erin", 200), ("lee", 404), ("bob", 404), ("charlie", 404)],
)
def test_case_detail(world: World, username, status):
    client = api_as(getattr(world, username))
    assert client.get(f"/api/cases/{world.uncertain_case_a.pk}/").status_code == status


def test_case_filters_validate_their_values(world: World):
    client = api_as(world.olga)
    assert client.get("/api/cases/?band=purple").status_code == 400
    assert client.get("/api/cases/?status=<script>").status_code == 400
    assert ids(client.get("/api/cases/?band=violent")) == {world.violent_case_a.pk}


def test_me_tells_the_role(world: World):
    for username, role in [
        ("alice", "centre_admin"),
        ("erin", "expert"),
        ("lee", "liaison"),
        ("olga", "operator"),
        ("charlie", "none"),
    ]:
        assert api_as(getattr(world, username)).get("/api/me/").json()["role"] == role


def test_token_auth_works(world: World):
    response = APIClient().post(
        "/api/auth/token/", {"username": "alice", "password": "pw-for-tests"}, format="json"
    )
    token = response.json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert ids(client.get("/api/sites/")) == {world.site_a.pk}
    bad = APIClient().post(
        "/api/auth/token/", {"username": "alice", "password": "wrong"}, format="json"
    )
    assert bad.status_code == 400


def test_schema_and_docs_are_served(world: World):
    client = api_as(world.olga)
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    assert "/api/cameras/" in schema.json()["paths"]
    assert client.get("/api/docs/").status_code == 200


def test_closing_a_report_through_the_api_closes_its_case(world: World):
    client = api_as(world.lee)
    response = client.post(
        f"/api/reports/{world.report_a.pk}/status/", {"status": "closed"}, format="json"
    )
    assert response.status_code == 200
    world.violent_case_a.refresh_from_db()
    assert world.violent_case_a.status == "closed"


def test_openapi_schema_validates_without_warnings(tmp_path):
    from django.core.management import call_command

    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert "/api/edge/clips/" in out.read_text()
