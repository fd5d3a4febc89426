"""A removed admin's open socket stops hearing the site at once, not at the next heartbeat
(issue #16 item 8: it used to keep receiving for up to 30 s)."""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from detection.announce import broadcast_case
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_removed_admin_stops_hearing_the_site_within_a_second(world, listen) -> None:
    # Bob administers Busan and is also a Seoul expert, so his socket stays open.
    factories.ExpertProfileFactory(user=world.bob, regions=["Seoul"])
    bob = listen(world.bob)
    assert bob.connected
    world.site_b.admins.remove(world.bob)
    time.sleep(1.2)  # past the freshness bound, far below the 30 s heartbeat
    with transaction.atomic():
        broadcast_case(world.uncertain_case_b)  # Busan: no longer Bob's
        broadcast_case(world.uncertain_case_a)  # Seoul: Bob's as an expert
    first = bob.wait(lambda m: m["type"] == "case.alert", timeout=10)
    assert first["case"]["id"] == world.uncertain_case_a.pk
