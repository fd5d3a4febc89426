from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from access.policy import Role, role_of
from tests.conftest import World

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("username", "landing"),
    [("alice", "/sites/"), ("erin", "/reviews/"), ("lee", "/reports/"), ("olga", "/ops/")],
)
def test_each_role_lands_on_its_page(world: World, username, landing):
    response = client_for(getattr(world, username)).get("/")
    assert response.status_code == 302 and response["Location"] == landing
    assert client_for(getattr(world, username)).get(landing).status_code == 200


def test_outsider_sees_no_access_page(world: World):
    response = client_for(world.charlie).get("/")
    assert response.status_code == 403
    assert b"No access yet" in response.content


@pytest.mark.parametrize("url", ["/", "/sites/", "/reviews/", "/reports/", "/ops/"])
def test_anonymous_is_sent_to_login(url):
    response = Client().get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_login_with_a_password(world: World):
    client = Client()
    response = client.post(reverse("login"), {"username": "alice", "password": "pw-for-tests"})
    assert response.status_code == 302
    assert client.get("/sites/").status_code == 200
    wrong = Client().post(reverse("login"), {"username": "alice", "password": "nope"})
    assert wrong.status_code == 200 and b"didn" in wrong.content


def test_site_pages_are_scoped(world: World):
    alice = client_for(world.alice)
    page = alice.get("/sites/").content.decode()
    assert world.site_a.name in page and world.site_b.name not in page
    assert alice.get(f"/sites/{world.site_a.pk}/").status_code == 200
    assert alice.get(f"/sites/{world.site_b.pk}/").status_code == 404
    assert client_for(world.charlie).get(f"/sites/{world.site_a.pk}/").status_code == 404


def test_report_pages_are_scoped(world: World):
    assert client_for(world.lee).get(f"/reports/{world.report_a.pk}/").status_code == 200
    for user in (world.pat, world.alice, world.charlie, world.erin):
        assert client_for(user).get(f"/reports/{world.report_a.pk}/").status_code == 404


def test_review_queue_is_for_experts(world: World):
    sam_page = client_for(world.sam).get("/reviews/").content.decode()
    assert f"<td>{world.uncertain_case_a.pk}</td>" in sam_page
    assert f"<td>{world.uncertain_case_b.pk}</td>" not in sam_page
    charlie_page = client_for(world.charlie).get("/reviews/").content.decode()
    assert f"<td>{world.uncertain_case_a.pk}</td>" not in charlie_page


def test_ops_page_is_for_operators_only(world: World):
    assert client_for(world.olga).get("/ops/").status_code == 200
    assert client_for(world.alice).get("/ops/").status_code == 403


def test_django_admin_is_for_operators_only(world: World):
    assert client_for(world.olga).get("/admin/").status_code == 200
    assert client_for(world.alice).get("/admin/").status_code == 302


def test_roles_follow_attachments(world: World):
    assert [
        role_of(u) for u in (world.olga, world.erin, world.lee, world.alice, world.charlie)
    ] == [
        Role.OPERATOR,
        Role.EXPERT,
        Role.LIAISON,
        Role.CENTRE_ADMIN,
        Role.NONE,
    ]
    world.alice.is_active = False
    assert role_of(world.alice) == Role.NONE


def test_pages_render_in_korean(world: World):
    client = client_for(world.alice)
    response = client.get("/sites/", HTTP_ACCEPT_LANGUAGE="ko")
    assert response.status_code == 200
    assert response.headers["Content-Language"] == "ko"


@pytest.mark.parametrize(
    ("username", "case_attr", "landing"),
    [
        ("lee", "violent_case_a", "report"),
        ("olga", "violent_case_a", "report"),
        ("erin", "uncertain_case_a", "review"),
        ("alice", "uncertain_case_a", "camera"),
        ("alice", "violent_case_a", "camera"),
    ],
)
def test_alert_links_open_the_page_each_role_works_on(world: World, username, case_attr, landing):
    case = getattr(world, case_attr)
    response = client_for(getattr(world, username)).get(f"/cases/{case.pk}/")
    expected = {
        "report": f"/reports/{world.report_a.pk}/",
        "review": f"/reviews/cases/{case.pk}/",
        # Issue #15: admins had no page for a case, only the camera's day.
        "camera": f"/sites/cases/{case.pk}/",
    }[landing]
    assert response.status_code == 302 and response["Location"] == expected
    if landing == "camera":
        page = client_for(getattr(world, username)).get(expected)
        assert page.status_code == 200 and '<video id="player"' in page.text


@pytest.mark.parametrize("username", ["bob", "charlie", "erin", "lee"])
def test_the_admin_case_page_is_the_sites_admins_alone(world: World, username):
    url = f"/sites/cases/{world.uncertain_case_a.pk}/"
    assert client_for(getattr(world, username)).get(url).status_code == 404


@pytest.mark.parametrize(
    ("username", "case_attr"),
    [
        ("bob", "uncertain_case_a"),
        ("charlie", "violent_case_a"),
        ("pat", "violent_case_a"),
        ("sam", "uncertain_case_b"),
    ],
)
def test_alert_links_reveal_nothing_to_outsiders(world: World, username, case_attr):
    case = getattr(world, case_attr)
    assert client_for(getattr(world, username)).get(f"/cases/{case.pk}/").status_code == 404


@pytest.mark.parametrize(
    ("username", "links"),
    [
        ("alice", {"/sites/"}),
        ("erin", {"/reviews/"}),
        ("lee", {"/reports/"}),
        ("olga", {"/sites/", "/reviews/", "/reports/", "/admin/"}),
        ("charlie", set()),
    ],
)
def test_navigation_shows_each_role_its_portals(world: World, username, links):
    page = (
        client_for(getattr(world, username)).get("/accounts/login/", follow=True).content.decode()
    )
    nav = page.split("<nav>")[1].split("</nav>")[0] if "<nav>" in page else ""
    shown = {
        href for href in ["/sites/", "/reviews/", "/reports/", "/admin/"] if f'href="{href}"' in nav
    }
    assert shown == links


@pytest.mark.parametrize("username", ["alice", "erin", "lee", "charlie"])
def test_a_signed_in_non_operator_at_admin_gets_a_clear_403_not_a_redirect_loop(
    world: World, username
):
    """Issue #15: /admin/ and /admin/login/ sent every non-operator to each other for ever."""
    client = client_for(getattr(world, username))
    response = client.get("/admin/", follow=True)
    assert response.status_code == 403
    assert len(response.redirect_chain) <= 1
    assert b"Operators only" in response.content
    korean = client.get("/admin/login/?next=/admin/", HTTP_ACCEPT_LANGUAGE="ko")
    assert korean.status_code == 403


def test_operators_and_anonymous_still_reach_the_admin_and_its_sign_in(world: World):
    assert client_for(world.olga).get("/admin/").status_code == 200
    anonymous = Client().get("/admin/", follow=True)
    assert anonymous.status_code == 200 and b'name="password"' in anonymous.content
