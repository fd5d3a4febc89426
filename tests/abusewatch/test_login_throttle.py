"""Failed sign-ins are limited per account and per address, on every way in."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import World

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"


@pytest.fixture(autouse=True)
def small_limits(settings) -> None:
    # Counts start empty: every test has a cache namespace of its own (tests/conftest.py).
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    settings.LOGIN_FAILURES_PER_ADDRESS = 6


def page_login(username: str, password: str) -> int:
    response = Client().post("/accounts/login/", {"username": username, "password": password})
    return response.status_code


def token(username: str, password: str) -> int:
    response = APIClient().post(
        "/api/auth/token/", {"username": username, "password": password}, format="json"
    )
    return response.status_code


def test_an_account_is_locked_after_its_failures_even_with_the_right_password(world: World):
    assert [page_login("alice", "wrong") for _ in range(3)] == [200, 200, 200]
    blocked = Client().post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert blocked.status_code == 429
    assert 'id="throttled"' in blocked.content.decode()
    assert "_auth_user_id" not in blocked.client.session
    # The API and the admin's login page count the same failures.
    assert token("alice", PASSWORD) == 429
    assert token("ALICE ", PASSWORD) == 429  # the same account however it is typed
    admin = Client().post("/admin/login/", {"username": "alice", "password": PASSWORD})
    assert admin.status_code == 429
    # Another account is not locked by Alice's.
    assert page_login("bob", PASSWORD) == 302


def test_api_failures_count_and_a_success_starts_the_account_again(world: World):
    assert token("lee", "wrong") == 400
    assert token("lee", "wrong") == 400
    assert token("lee", PASSWORD) == 200  # the third try is allowed and resets the account
    assert [token("lee", "wrong") for _ in range(3)] == [400, 400, 400]
    assert token("lee", PASSWORD) == 429


def test_a_blocked_sign_in_never_checks_the_password(world: World, monkeypatch):
    assert [page_login("alice", "wrong") for _ in range(3)] == [200, 200, 200]
    checked: list[str] = []
    monkeypatch.setattr(
        "django.contrib.auth.forms.authenticate",
        lambda request=None, **credentials: checked.append(credentials["username"]),
    )
    assert page_login("alice", PASSWORD) == 429
    assert token("alice", PASSWORD) == 429
    assert checked == []


def test_one_address_trying_many_accounts_is_slowed_to_one_try_per_name(world: World):
    for name in ("alice", "bob", "alice", "bob", "lee", "lee"):
        assert page_login(name, "wrong") == 200
    # The address is throttled, not locked: Olga, who knows her password, still signs in...
    assert page_login("olga", PASSWORD) == 302
    # ...but a wrong guess at any name from it now locks that name at once.
    assert page_login("pat", "wrong") == 200
    assert page_login("pat", PASSWORD) == 429


def test_bad_bodies_are_400_not_500(world: World):
    client = APIClient()
    assert client.post("/api/auth/token/", "[]", content_type="application/json").status_code == 400
    assert client.post("/api/auth/token/", {}, format="json").status_code == 400
    long_name = page_login("x" * 10_000, "wrong")
    assert long_name == 200


@pytest.fixture
def redis_down(settings):
    """The shared cache points at a Redis that is not there (port 1 refuses at once)."""
    from abusewatch import login_throttle

    caches = dict(settings.CACHES)
    caches["default"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 1.0},
    }
    settings.CACHES = caches
    login_throttle.cache._local.clear()
    yield
    login_throttle.cache._local.clear()


def test_token_sign_in_while_redis_is_down_works_and_still_limits_guessing(
    world: World, redis_down, caplog
):
    # Before: a 500 for everyone (issue #16 item 2). Now: the right password signs in...
    assert token("lee", PASSWORD) == 200
    assert page_login("alice", PASSWORD) == 302
    # ...and wrong ones are still counted, in this process's memory.
    assert [token("lee", "wrong") for _ in range(3)] == [400, 400, 400]
    assert token("lee", PASSWORD) == 429, "guessing must stay limited while Redis is down"
    assert "shared cache unavailable (ConnectionError)" in caplog.text
