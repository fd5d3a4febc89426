"""Issue #16 item 8, the lesser holes: a Content-Security-Policy with a nonce for every inline
script, API schema and docs behind sign-in, tokens that expire, fingerprints compared without
regard to case, and help text that points to the issuing server, not the package."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import load_command_class
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.conftest import World
from tests.support.footage import client_as

pytestmark = pytest.mark.django_db

TEMPLATES = Path(django_settings.BASE_DIR) / "templates"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)([^>]*)>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
# Rendered into evidence packages (a file in a zip), never served by this server.
NOT_SERVED = {"reports/evidence_summary.html"}


def test_every_inline_script_of_every_template_carries_the_nonce() -> None:
    checked = 0
    for template in sorted(TEMPLATES.rglob("*.html")):
        name = template.relative_to(TEMPLATES).as_posix()
        if name in NOT_SERVED:
            continue
        text = template.read_text(encoding="utf-8")
        for attributes in INLINE_SCRIPT.findall(text):
            checked += 1
            assert 'nonce="{{ csp_nonce }}"' in attributes, name
        # An inline event handler cannot carry a nonce: the CSP would silently disable it.
        assert not EVENT_HANDLER.search(text), name
    assert checked >= 2  # base.html and the camera form


def test_pages_carry_a_csp_whose_nonce_matches_their_scripts(world: World) -> None:
    response = client_as(world.alice).get(reverse("camera-create", args=[world.site_a.pk]))
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    found = re.search(r"'nonce-([^']+)'", policy)
    assert found is not None, policy
    nonce = found.group(1)
    # JSON data blocks (type="application/json") are not run, so they need no nonce.
    scripts = [a for a in INLINE_SCRIPT.findall(response.text) if "application/json" not in a]
    assert len(scripts) >= 2
    assert all(f'nonce="{nonce}"' in attributes for attributes in scripts)
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";")[0]
    again = client_as(world.alice).get(reverse("camera-create", args=[world.site_a.pk]))
    assert nonce not in again["Content-Security-Policy"]  # fresh for every response
    login = APIClient().get("/accounts/login/")
    assert "Content-Security-Policy" in login


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/", "/api/redoc/"])
def test_api_schema_and_docs_need_sign_in(world: World, path) -> None:
    anonymous = APIClient().get(path)
    assert anonymous.status_code in {401, 403}
    assert b"openapi" not in anonymous.content.lower()
    signed_in = client_as(world.alice).get(path)
    assert signed_in.status_code == 200


def test_api_tokens_expire(world: World, settings) -> None:
    settings.API_TOKEN_MAX_AGE_DAYS = 30
    token = Token.objects.create(user=world.alice)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/me/").status_code == 200
    Token.objects.filter(pk=token.pk).update(
        created=token.created - dt.timedelta(days=30, minutes=1)
    )
    expired = client.get("/api/me/")
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]
    # Signing in again hands out a new token, not the expired one.
    world.alice.set_password("pw-for-alice")
    world.alice.save()
    fresh = APIClient().post(
        "/api/auth/token/", {"username": "alice", "password": "pw-for-alice"}, format="json"
    )
    assert fresh.status_code == 200
    assert fresh.json()["token"] != token.key
    client.credentials(HTTP_AUTHORIZATION=f"Token {fresh.json()['token']}")
    assert client.get("/api/me/").status_code == 200


def test_fingerprint_help_points_to_the_server_not_the_package() -> None:
    command = load_command_class("reports", "verify_evidence")
    parser = command.create_parser("manage.py", "verify_evidence")
    text = " ".join(parser.format_help().split())
    assert "report page" in text
    assert "Never take it from the" in text
    assert "package's summary show it" not in text


def test_fingerprints_are_compared_without_regard_to_case(footage: World, tmp_path: Path) -> None:
    from reports.signing import key_fingerprint, public_key_pem, signing_key
    from tests.reports.test_evidence import download_package, verify

    path = download_package(footage, tmp_path)
    server_fp = key_fingerprint(public_key_pem(signing_key()))
    assert verify(path, "--offline", "--fingerprint", server_fp.upper()) == "OK"
    assert verify(path, "--offline", "--fingerprint", server_fp.lower()) == "OK"
    wrong = server_fp[:-1] + ("0" if server_fp[-1] != "0" else "1")
    assert verify(path, "--offline", "--fingerprint", wrong.upper()).startswith("FAILED")
