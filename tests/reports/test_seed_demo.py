from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from access.policy import Role, role_of
from cameras.models import Camera, PoliceStation, Site

pytestmark = pytest.mark.django_db


def test_seed_demo_gives_every_role_and_is_idempotent(settings, capsys):
    settings.DEBUG = True
    call_command("seed_demo")
    counts = (
        User.objects.count(),
        Site.objects.count(),
        Camera.objects.count(),
        PoliceStation.objects.count(),
    )
    call_command("seed_demo")
    assert (
        User.objects.count(),
        Site.objects.count(),
        Camera.objects.count(),
        PoliceStation.objects.count(),
    ) == counts
    roles = {
        name: role_of(User.objects.get(username=name))
        for name in ["operator", "admin-sunflower", "expert", "police-gangnam", "outsider"]
    }
    assert roles == {
        "operator": Role.OPERATOR,
        "admin-sunflower": Role.CENTRE_ADMIN,
        "expert": Role.EXPERT,
        "police-gangnam": Role.LIAISON,
        "outsider": Role.NONE,
    }
    printed = capsys.readouterr().out
    assert "admin-sunflower" in printed and "abusewatch-demo" in printed
    assert User.objects.get(username="expert").check_password("abusewatch-demo")


def test_seed_demo_refuses_to_run_in_production(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo")
    assert not User.objects.exists()


def test_seed_demo_gives_every_centre_enough_experts_for_a_dismissal(settings):
    """Issue #15: with too few experts in a region a dismissal could never be agreed."""
    from reviews.models import ExpertProfile
    from reviews.services import DISMISS_REVIEWS

    settings.DEBUG = True
    call_command("seed_demo")
    profiles = list(ExpertProfile.objects.all())
    for site in Site.objects.all():
        covering = [p for p in profiles if p.covers_every_region or site.region in p.region_names()]
        assert len(covering) >= DISMISS_REVIEWS, site.name
