"""/ws/alerts/: who may connect and what each role hears, over the real Redis channel layer."""

from __future__ import annotations

import pytest
from django.db import transaction

from detection.announce import broadcast_case
from detection.consumers import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED
from detection.models import Case

pytestmark = pytest.mark.django_db(transaction=True)


def test_anonymous_and_outsider_are_refused(world, listen):
    anonymous = listen(None)
    assert not anonymous.connected and anonymous.close_code == CLOSE_UNAUTHENTICATED
    charlie = listen(world.charlie)
    assert not charlie.connected and charlie.close_code == CLOSE_FORBIDDEN


def test_each_role_hears_only_the_cases_it_may_see(world, listen):
    sockets = {
        name: listen(getattr(world, name))
        for name in ("alice", "bob", "erin", "sam", "lee", "pat", "olga")
    }
    assert all(s.connected for s in sockets.values())
    with transaction.atomic():
        broadcast_case(world.uncertain_case_b)  # Busan, uncertain
        broadcast_case(world.violent_case_a, event="case.status")  # Seoul, violent, reported

    def case_ids(name: str, expected: int) -> set[int]:
        got = set()
        for _ in range(expected):
            message = sockets[name].wait(lambda m: m["type"].startswith("case."), timeout=10)
            got.add(message["case"]["id"])
        return got

    assert case_ids("olga", 2) == {world.uncertain_case_b.pk, world.violent_case_a.pk}
    assert case_ids("bob", 1) == {world.uncertain_case_b.pk}
    assert case_ids("erin", 1) == {world.uncertain_case_b.pk}
    assert case_ids("alice", 1) == {world.violent_case_a.pk}
    assert case_ids("lee", 1) == {world.violent_case_a.pk}
    # A final marker case proves the sockets were still delivering when we stopped looking.
    marker = Case.objects.create(
        camera=world.camera_a,
        started_at=world.uncertain_case_a.started_at,
        ended_at=world.uncertain_case_a.ended_at,
        peak_score=0.5,
        band="uncertain",
    )
    with transaction.atomic():
        broadcast_case(marker)
    for name in ("alice", "erin", "sam", "olga"):
        assert (
            sockets[name].wait(lambda m: m["type"] == "case.alert", timeout=10)["case"]["id"]
            == marker.pk
        )
    # Nothing else arrived: Sam (Seoul only) never heard of the Busan case, Pat nothing at all.
    for name, socket in sockets.items():
        leftovers = [m["case"]["id"] for m in socket.drain() if m["type"].startswith("case.")]
        assert leftovers == [], (name, leftovers)
    assert sockets["pat"].messages.empty()


def test_ping_is_answered(world, listen):
    alice = listen(world.alice)
    alice._run(alice.communicator.send_json_to({"type": "ping"}))
    assert alice.wait(lambda m: m["type"] == "pong", timeout=10)


def test_an_idle_socket_still_hears_alerts(world, listen):
    """A browser may sit for minutes without an alert; its socket must survive the silence.

    channels_redis waits for messages in 5-s blocking reads; with redis-py 8's default 5-s
    socket timeout the two raced and an idle consumer died, silently, after about 5 s.
    """
    import time

    alice = listen(world.alice)
    assert alice.connected
    time.sleep(12)  # more than two of channels_redis's blocking waits
    with transaction.atomic():
        broadcast_case(world.uncertain_case_a)
    message = alice.wait(lambda m: m["type"] == "case.alert", timeout=10)
    assert message["case"]["id"] == world.uncertain_case_a.pk
    assert not alice.communicator.future.done()


def test_an_open_socket_follows_the_users_roles(world, listen, monkeypatch):
    """Roles are read again at every heartbeat: a removed admin stops hearing their site."""
    import time

    from tests import factories
    from tests.support.live import wait_for

    monkeypatch.setattr("detection.consumers.WEBSOCKET_HEARTBEAT_SECONDS", 0.3)
    # Bob administers the Busan centre and is also a Seoul expert; Alice only administers hers.
    factories.ExpertProfileFactory(user=world.bob, regions=["Seoul"])
    bob, alice = listen(world.bob), listen(world.alice)
    assert bob.connected and alice.connected
    world.site_b.admins.remove(world.bob)
    world.site_a.admins.remove(world.alice)
    # Alice has no role left: the server closes her socket.
    wait_for(lambda: alice.failure is not None, timeout=10, what="alice's socket to close")
    assert "websocket.close" in repr(alice.failure)
    time.sleep(1.5)  # several of Bob's heartbeats
    with transaction.atomic():
        broadcast_case(world.uncertain_case_b)  # Busan: no longer Bob's
        broadcast_case(world.uncertain_case_a)  # Seoul: Bob's as an expert
    first = bob.wait(lambda m: m["type"] == "case.alert", timeout=10)
    assert first["case"]["id"] == world.uncertain_case_a.pk
    assert not bob.communicator.future.done()
