"""`make run` (DEBUG on, DEBUG_ERROR_PAGES off) answers errors as production does (issue #15)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import World

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_settings(settings):
    settings.DEBUG = True
    settings.DEBUG_ERROR_PAGES = False
    return settings


def test_an_unknown_url_is_a_plain_404_that_lists_no_url_pattern(world: World, demo_settings):
    client = Client()
    client.force_login(world.alice)
    for lang, title in (("en", "Not found"), ("ko", "찾을 수 없음")):
        response = client.get("/no/such/page/", HTTP_ACCEPT_LANGUAGE=lang)
        assert response.status_code == 404
        assert title in response.text
        assert "URLconf" not in response.text and "admin/" not in response.text
    assert "URLconf" not in Client().get("/nope/").text  # signed out too


def test_a_view_that_raises_404_or_fails_gets_the_plain_page(
    world: World, demo_settings, monkeypatch
):
    client = Client(raise_request_exception=False)
    client.force_login(world.alice)
    missing = client.get("/reports/999999/")
    assert missing.status_code == 404 and 'id="error-page"' in missing.text

    def broken(user):
        raise RuntimeError("secret detail")

    monkeypatch.setattr("abusewatch.views.role_of", broken)
    failed = client.get("/")
    assert failed.status_code == 500
    assert 'data-status="500"' in failed.text and "secret detail" not in failed.text
    assert "Traceback" not in failed.text


def test_with_debug_pages_on_django_answers_as_before(world: World, settings):
    settings.DEBUG = True
    settings.DEBUG_ERROR_PAGES = True
    response = Client().get("/no/such/page/")
    assert response.status_code == 404 and 'id="error-page"' not in response.text
