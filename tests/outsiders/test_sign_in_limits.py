"""Sign-in limits that hold however a name is typed and cannot be turned against users who know
their password (issue #16 item 3)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEvent
from tests.conftest import World

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"


@pytest.fixture(autouse=True)
def small_limits(settings) -> None:
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    settings.LOGIN_FAILURES_PER_ADDRESS = 10
    settings.LOGIN_LOCK_SECONDS = 60
    settings.LOGIN_LOCK_MAX_SECONDS = 3600


def page_login(username: str, password: str, address: str = "198.51.100.1") -> int:
    client = Client(REMOTE_ADDR=address)
    return client.post("/accounts/login/", {"username": username, "password": password}).status_code


def token(username: str, password: str, address: str = "198.51.100.1") -> int:
    client = APIClient(REMOTE_ADDR=address)
    body = {"username": username, "password": password}
    return client.post("/api/auth/token/", body, format="json").status_code


@pytest.mark.parametrize(
    "variant",
    [
        "\uff50olice-gangnam",  # fullwidth p: NFKC makes it "p"
        "POLICE-GANGNAM",
        "Police-Gangnam ",
        "".join(chr(ord(c) + 0xFEE0) for c in "police-gangnam"),  # all fullwidth
    ],
)
def test_a_name_typed_otherwise_shares_the_lock(world: World, variant) -> None:
    world.lee.username = "police-gangnam"
    world.lee.save()
    assert [page_login("police-gangnam", "wrong") for _ in range(3)] == [200, 200, 200]
    assert page_login(variant, PASSWORD) == 429
    assert token(variant, PASSWORD) == 429


def test_a_lock_from_one_address_does_not_lock_the_user_out_elsewhere(world: World) -> None:
    assert [page_login("alice", "wrong", "203.0.113.66") for _ in range(3)] == [200] * 3
    assert page_login("alice", PASSWORD, "203.0.113.66") == 429
    # Alice at her own desk is not locked out by somebody else's guesses.
    assert page_login("alice", PASSWORD, "192.0.2.10") == 302
    assert token("alice", PASSWORD, "192.0.2.11") == 200


def test_random_name_failures_throttle_the_address_without_locking_out_a_known_password(
    world: World,
) -> None:
    for n in range(30):
        assert page_login(f"random-{n}", "wrong") == 200
    # Behind the same address (a shared proxy): the right password still works.
    assert page_login("bob", PASSWORD) == 302
    assert token("erin", PASSWORD) == 200
    # A guess from the throttled address costs the name its tries at once.
    assert page_login("sam", "wrong") == 200
    assert page_login("sam", PASSWORD) == 429
    assert page_login("sam", PASSWORD, "192.0.2.20") == 302


def test_locks_are_reported_to_operators(world: World, django_capture_on_commit_callbacks) -> None:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("operators", channel)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert [token("alice", "wrong") for _ in range(3)] == [400, 400, 400]
        assert token("alice", PASSWORD) == 429
        locked = AuditEvent.objects.get(action="login.locked")
        assert locked.outcome == "failed" and locked.details["locked_seconds"] == 60
        assert "alice" not in str(locked.details)  # the typed name is not stored
        message = async_to_sync(asyncio.wait_for)(layer.receive(channel), 5)["message"]
        assert message["type"] == "ops.alert" and message["alert"] == "login.locked"
    finally:
        async_to_sync(layer.group_discard)("operators", channel)


def test_a_second_lock_lasts_twice_as_long(world: World, settings) -> None:
    from django.core.cache import cache

    from abusewatch.login_throttle import _pair, login_failed, login_retry_after

    for _ in range(3):
        login_failed("alice", "203.0.113.5")
    first = login_retry_after("alice", "203.0.113.5")
    cache.delete(f"login-lock:{_pair('alice', '203.0.113.5')}")  # the first lock has passed
    for _ in range(3):
        login_failed("alice", "203.0.113.5")
    second = login_retry_after("alice", "203.0.113.5")
    assert 55 <= first <= 61 and 115 <= second <= 121
