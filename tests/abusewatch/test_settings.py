from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from abusewatch import env

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    # Only what a deployment would have: no test-run switches from the parent process.
    dropped = {"DEBUG", "SECRET_KEY", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "abusewatch.settings", **environment},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("true", True), ("off", False), ("", False)]
)
def test_env_bool_reads_common_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("SOME_FLAG", raw)
    assert env.env_bool("SOME_FLAG") is expected


def test_env_bool_refuses_nonsense(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        env.env_bool("SOME_FLAG")


def test_env_int_refuses_nonsense(monkeypatch):
    monkeypatch.setenv("SOME_NUMBER", "12abc")
    with pytest.raises(ImproperlyConfigured, match="SOME_NUMBER"):
        env.env_int("SOME_NUMBER", 3)


def test_env_secret_prefers_file(monkeypatch, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file\n")
    monkeypatch.setenv("MY_SECRET", "from-env")
    monkeypatch.setenv("MY_SECRET_FILE", str(secret_file))
    assert env.env_secret("MY_SECRET") == "from-file"


def test_env_secret_unreadable_file_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("MY_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="MY_SECRET_FILE"):
        env.env_secret("MY_SECRET")


def test_secret_key_is_required_when_debug_is_off():
    result = run_manage("check", DEBUG="0", DATABASE_URL="sqlite:////tmp/aw-settings-test.sqlite3")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_deploy_checks_are_clean_in_production_mode():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY="a-long-production-like-secret-key-0123456789-abcdefghijklmnop",
        ALLOWED_HOSTS="abusewatch.example.org",
        DATABASE_URL="sqlite:////tmp/aw-settings-test.sqlite3",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_database_url_selects_postgresql():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "abusewatch.settings",
            "DEBUG": "1",
            "DATABASE_URL": "postgres://u@db.example:5432/aw",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "django.db.backends.postgresql"
