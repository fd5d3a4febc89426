"""AbuseWatch settings: one module, read from the environment.

With no environment at all this gives the embedded single-machine setup: SQLite under `var/`,
and (when `REDIS_URL` is unset) an in-process channel layer with Celery running tasks eagerly.
`bin/run` starts an embedded Redis server and sets `REDIS_URL` for every process it starts, so
the full system crosses processes without any installed service. In production set
`DATABASE_URL` (PostgreSQL) and `REDIS_URL`.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from abusewatch.embedded import redis_py_url
from abusewatch.env import env_bool, env_float, env_int, env_list, env_secret, env_str

# Lets `ModelAdmin[Site]` and friends be written at run time as the type checker wants them.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("ABUSEWATCH_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", default=False)

SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) is required when DEBUG is off")
    # Development only: a fixed key keeps sessions valid across restarts of `bin/run`.
    SECRET_KEY = "dev-only-insecure-key-never-used-with-debug-off-0123456789abcdef"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "cameras",
    "detection",
    "reviews",
    "reports",
    "viewings",
    # The bottom layer: no domain app is imported by these.
    "audit",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "abusewatch.csp.ContentSecurityPolicyMiddleware",
    # Last, so it sees what the view raised; inert unless DEBUG is on and DEBUG_ERROR_PAGES off.
    "abusewatch.error_pages.ProductionErrorPages",
]
# With DEBUG on, whether Django's debug pages (URL list, traceback) answer errors. `make run`
# turns them off: its demo runs with DEBUG, and anyone who opens it may not see them.
DEBUG_ERROR_PAGES = env_bool("DEBUG_ERROR_PAGES", default=True)

ROOT_URLCONF = "abusewatch.urls"
WSGI_APPLICATION = "abusewatch.wsgi.application"
ASGI_APPLICATION = "abusewatch.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "abusewatch.context_processors.role",
                "abusewatch.csp.csp_nonce",
            ],
            # base.html's tags name the statuses of every app, so they live above them all.
            "libraries": {"portal_tags": "abusewatch.portal_tags"},
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'abusewatch.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        # A kept connection (Celery workers, below) is checked before its first use in each
        # task, so a database restart costs one reconnect instead of failed tasks.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Web, ingestion and Celery processes share the SQLite file: wait for locks instead of
    # failing at once, and take the write lock at BEGIN so two writers never deadlock.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = env_str("LANGUAGE_CODE", "en")
LANGUAGES = [("en", _("English")), ("ko", _("Korean"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Without collectstatic in development, WhiteNoise serves straight from the app folders.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
# Footage is never served from a public URL: every file goes through a view that checks the
# user's role and writes an audit event.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media-not-public/"
# Largest clip an edge device may push in one request.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
EDGE_UPLOAD_MAX_BYTES = env_int("EDGE_UPLOAD_MAX_BYTES", 50 * 1024 * 1024)
# Request bodies are limited at the ASGI layer (abusewatch/body_limit.py), before any view or
# authentication: every path to REQUEST_BODY_MAX_BYTES (above Django's own form limit, so a
# large form still gets Django's message), edge clips to their own setting plus the multipart
# envelope.
REQUEST_BODY_MAX_BYTES = env_int("REQUEST_BODY_MAX_BYTES", 4 * 1024 * 1024)
REQUEST_BODY_LIMITS_BY_PATH = {"/api/edge/clips/": EDGE_UPLOAD_MAX_BYTES + 1024 * 1024}
# Addresses a centre admin's camera source may not resolve to (operators are not limited):
# loopback, unspecified, link-local (cloud metadata), multicast and broadcast. Private LANs
# stay allowed: that is where cameras are.
CAMERA_SOURCE_BLOCKED_NETWORKS = env_list(
    "CAMERA_SOURCE_BLOCKED_NETWORKS",
    [
        "127.0.0.0/8",
        "0.0.0.0/8",
        "169.254.0.0/16",
        "224.0.0.0/4",
        "255.255.255.255/32",
        "::1/128",
        "::/128",
        "fe80::/10",
        "ff00::/8",
    ],
)
for _network in CAMERA_SOURCE_BLOCKED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _error:
        raise ImproperlyConfigured(f"CAMERA_SOURCE_BLOCKED_NETWORKS: {_error}") from _error
# An edge device may hold clips while its link is down; older ones are refused, not stored
# with dates retention and the timeline would misread.
EDGE_UPLOAD_MAX_AGE_DAYS = env_int("EDGE_UPLOAD_MAX_AGE_DAYS", 30)

# --- Redis: Celery broker and channel layer --------------------------------------------------
REDIS_URL = env_str("REDIS_URL")

# Failed sign-ins (login page and API token) allowed per account and per client address in a
# window; past either, sign-in is refused until the window ends (abusewatch.login_throttle).
LOGIN_FAILURES_PER_ACCOUNT = env_int("LOGIN_FAILURES_PER_ACCOUNT", 10)
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", 100)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60)
# A name locked from one address waits LOGIN_LOCK_SECONDS, doubling at each further lock up to
# LOGIN_LOCK_MAX_SECONDS; other addresses are not locked (abusewatch.login_throttle).
LOGIN_LOCK_SECONDS = env_int("LOGIN_LOCK_SECONDS", 60)
LOGIN_LOCK_MAX_SECONDS = env_int("LOGIN_LOCK_MAX_SECONDS", 60 * 60)
if REDIS_URL:
    # Shared by every web process, so the limits above hold across them.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_py_url(REDIS_URL),
            "KEY_PREFIX": env_str("CACHE_PREFIX", "abusewatch"),
            # A Redis that is down or hung must fail fast: sign-in then counts failures in
            # the process's own memory (abusewatch.login_throttle) instead of waiting.
            "OPTIONS": {"socket_connect_timeout": 2.0, "socket_timeout": 2.0},
        }
    }

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": redis_py_url(REDIS_URL),
                        # channels_redis waits for messages with a 5-s BZPOPMIN; redis-py 8
                        # reads with a 5-s socket timeout by default, so an idle websocket
                        # raced it and its consumer died. Read longer than the wait.
                        "socket_timeout": env_float("CHANNELS_REDIS_SOCKET_TIMEOUT", 30.0),
                        "socket_connect_timeout": 5.0,
                    }
                ],
                "prefix": env_str("CHANNELS_PREFIX", "asgi"),
            },
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    # One process, no broker: good for `manage.py shell` and quick experiments only.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True

CELERY_RESULT_BACKEND = None
# Celery workers keep their database connection from one task to the next (abusewatch.celery):
# the inference worker runs a task per window, and opening a connection for each was about 5 %
# of its time at 64 cameras. Django's own rules then close a connection that failed
# (errors, CONN_HEALTH_CHECKS) or is older than this many seconds. The web server keeps
# DATABASE_CONN_MAX_AGE (0: Django advises against persistent connections under ASGI).
WORKER_DATABASE_CONN_MAX_AGE = env_int("WORKER_DATABASE_CONN_MAX_AGE", 300)
# Celery's Django fixup closes every connection around every task unless this is set; with
# it, the fixup only closes after this many tasks, and abusewatch.celery leaves the rest to
# Django's close_old_connections (the same rule as between web requests).
CELERY_DB_REUSE_MAX = 10_000 if WORKER_DATABASE_CONN_MAX_AGE > 0 else None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}

# --- Operations: retention (detection), working copies (reports), metrics, notifications (alerts)
# How often retention looks for safe footage past its site's retention_hours.
RETENTION_SWEEP_MINUTES = env_int("RETENTION_SWEEP_MINUTES", 15)
# Most bytes MEDIA_ROOT may hold (0 = no quota); past it the oldest safe footage goes first.
MEDIA_QUOTA_BYTES = env_int("MEDIA_QUOTA_BYTES", 0)
CELERY_BEAT_SCHEDULE["operations-retention"] = {
    "task": "operations.retention_sweep",
    "schedule": RETENTION_SWEEP_MINUTES * 60.0,
    "options": {"queue": "default"},
}
# Windows pending longer than this since last queued are queued again (a lost message, a
# killed worker); after PENDING_MAX_ATTEMPTS queuings they are marked failed with the reason.
# Checked by beat every RECONCILE_INTERVAL_SECONDS (beat runs in `bin/run` and must run in
# production: `celery -A abusewatch beat`). Keep the bound above the slowest batch's time.
PENDING_REQUEUE_AFTER_SECONDS = env_float("PENDING_REQUEUE_AFTER_SECONDS", 60.0)
PENDING_MAX_ATTEMPTS = env_int("PENDING_MAX_ATTEMPTS", 5)
RECONCILE_INTERVAL_SECONDS = env_float("RECONCILE_INTERVAL_SECONDS", 20.0)
CELERY_BEAT_SCHEDULE["detection-reconcile-pending"] = {
    "task": "operations.reconcile_pending",
    "schedule": RECONCILE_INTERVAL_SECONDS,
    # A run that waited longer than an interval (broker down) is replaced by the next one.
    "options": {"queue": "default", "expires": RECONCILE_INTERVAL_SECONDS},
}
# /healthz fails while a window has waited longer than this, or a worker has not beaten its
# heart for WORKER_HEARTBEAT_STALE_SECONDS (abusewatch.heartbeat).
HEALTHZ_PENDING_MAX_AGE_SECONDS = env_float("HEALTHZ_PENDING_MAX_AGE_SECONDS", 300.0)
WORKER_HEARTBEAT_INTERVAL_SECONDS = env_float("WORKER_HEARTBEAT_INTERVAL_SECONDS", 5.0)
WORKER_HEARTBEAT_STALE_SECONDS = env_float("WORKER_HEARTBEAT_STALE_SECONDS", 20.0)
CELERY_BEAT_SCHEDULE["detection-end-quiet-spans"] = {
    "task": "detection.end_quiet_spans",
    "schedule": 60.0,
    "options": {"queue": "default"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Bearer token a Prometheus server sends to /metrics (operators' sessions work too).
METRICS_TOKEN = env_secret("METRICS_TOKEN")
# Longest wait for Celery workers to answer the /healthz ping.
HEALTHZ_WORKER_TIMEOUT_SECONDS = env_float("HEALTHZ_WORKER_TIMEOUT_SECONDS", 1.0)
# mqtt://[user:password@]host[:port] (mqtts:// for TLS); unset = no MQTT notifications.
MQTT_URL = env_secret("MQTT_URL")
MQTT_TOPIC_PREFIX = env_str("MQTT_TOPIC_PREFIX", "abusewatch")
# A camera announces at most one case per band in this many seconds (webhooks and MQTT).
NOTIFY_COOLDOWN_SECONDS = env_int("NOTIFY_COOLDOWN_SECONDS", 300)
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 5.0)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 6)
# Retry n waits base * 2**(n-1) seconds: 10 s, 20 s, 40 s ... with the defaults.
WEBHOOK_BACKOFF_SECONDS = env_float("WEBHOOK_BACKOFF_SECONDS", 10.0)

# --- The law of the centres (viewings): parents' viewing requests, storage planning ---------
VIEWING_ATTACHMENT_MAX_BYTES = env_int("VIEWING_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)
# Operators are warned when the disk would reach MEDIA_QUOTA_BYTES within this many days.
STORAGE_WARNING_DAYS = env_int("STORAGE_WARNING_DAYS", 14)
CELERY_BEAT_SCHEDULE["viewings-remind"] = {
    "task": "viewings.remind",
    "schedule": 3600.0,
    "options": {"queue": "default"},
}

# --- Security --------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- API -------------------------------------------------------------------------------------
# API tokens stop working this many days after they were issued; signing in again issues a new
# one (abusewatch.token_auth).
API_TOKEN_MAX_AGE_DAYS = env_int("API_TOKEN_MAX_AGE_DAYS", 30)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "abusewatch.token_auth.ExpiringTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "abusewatch.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AbuseWatch API",
    "DESCRIPTION": "Real-time violence detection for childcare-centre CCTV.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema maps every endpoint and field: for signed-in users, not for anyone passing.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "CaseStatusEnum": "detection.models.Case.Status",
        "PoliceReportStatusEnum": "reports.models.PoliceReport.Status",
        "CameraStatusEnum": "cameras.models.Camera.Status",
    },
}

# --- Detection -------------------------------------------------------------------------------
# The model used until an operator promotes a ModelVersion; shipped in the repository.
DEFAULT_MODEL_DIR = Path(
    env_str("DEFAULT_MODEL_DIR", str(BASE_DIR / "ml" / "artifacts" / "default"))
)
CASE_PRE_ROLL_SECONDS = env_float("CASE_PRE_ROLL_SECONDS", 2.0)
CASE_POST_ROLL_SECONDS = env_float("CASE_POST_ROLL_SECONDS", 2.0)
# Non-safe windows of one camera closer together than this belong to the same case.
CASE_MERGE_GAP_SECONDS = env_float("CASE_MERGE_GAP_SECONDS", 10.0)
# The longest span one case may cover; continuing activity opens a follow-up case linked to it
# (issue #15: one case once grew to 9 minutes and 259 windows).
CASE_MAX_SECONDS = env_float("CASE_MAX_SECONDS", 120.0)
# A periodic sweep ends the spans of cases whose camera went quiet altogether (no next window);
# the slack lets windows still waiting for a score extend them first.
CASE_QUIET_SWEEP_SLACK_SECONDS = env_float("CASE_QUIET_SWEEP_SLACK_SECONDS", 120.0)
# Make each reported case's blurred working copies without waiting to be asked: a task when the
# case is reported, and at the latest when its evidence package is built (packages carry them).
# Off, a copy is still made once, the first time someone watches the segment.
WORKING_COPIES_AHEAD = env_bool("WORKING_COPIES_AHEAD", default=True)
REVIEW_CLAIM_MINUTES = env_int("REVIEW_CLAIM_MINUTES", 15)
EVIDENCE_LINK_MINUTES = env_int("EVIDENCE_LINK_MINUTES", 30)
# Ed25519 key that signs evidence manifests: PEM (PKCS#8) or base64 of the 32 raw bytes, from
# EVIDENCE_SIGNING_KEY or the file named by EVIDENCE_SIGNING_KEY_FILE. Required with DEBUG off;
# in development a key is generated once and kept at EVIDENCE_DEV_KEY_PATH.
EVIDENCE_SIGNING_KEY = env_secret("EVIDENCE_SIGNING_KEY")
# Decided when settings load: test runners switch DEBUG off later but still want the dev key.
EVIDENCE_ALLOW_DEV_KEY = DEBUG
EVIDENCE_DEV_KEY_PATH = Path(
    env_str("EVIDENCE_DEV_KEY_PATH", str(VAR_DIR / "evidence-signing-dev-key.pem"))
)
# Longest wait for a camera source to answer the "test connection" probe.
CAMERA_PROBE_TIMEOUT_SECONDS = env_float("CAMERA_PROBE_TIMEOUT_SECONDS", 8.0)

# Database triggers refuse UPDATE/DELETE of audit events. Only the test settings turn this off.
AUDIT_EVENTS_APPEND_ONLY = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- Live pipeline: ingestion, inference, edge uploads ---------------------------------------
# How often the ingestion process re-reads the camera table (cameras added, enabled, disabled).
INGEST_POLL_SECONDS = env_float("INGEST_POLL_SECONDS", 5.0)
# Reconnect backoff of a camera reader: doubles from the first value up to the second.
INGEST_BACKOFF_INITIAL_SECONDS = env_float("INGEST_BACKOFF_INITIAL_SECONDS", 1.0)
INGEST_BACKOFF_MAX_SECONDS = env_float("INGEST_BACKOFF_MAX_SECONDS", 30.0)
# A live source that sends nothing for this long is treated as disconnected.
INGEST_READ_TIMEOUT_SECONDS = env_float("INGEST_READ_TIMEOUT_SECONDS", 5.0)
# Readers a shard starts together connect spread over this share of a window (0: all at once),
# so that their windows do not all close in the same instant (cameras.ingest.manager).
INGEST_START_SPREAD = env_float("INGEST_START_SPREAD", 1.0)
# How often camera health (last frame, measured fps) is written and pushed while online.
INGEST_STATUS_SECONDS = env_float("INGEST_STATUS_SECONDS", 5.0)
# Frame rate of a preview that has to be transcoded (non-H.264 sources such as MJPEG).
PREVIEW_TRANSCODE_FPS = env_float("PREVIEW_TRANSCODE_FPS", 12.0)
# Windows whose mean frame difference (0-1) is below this skip the model: nothing moves.
MOTION_GATE_THRESHOLD = env_float("MOTION_GATE_THRESHOLD", 0.002)
# --- Ingest decoding (helper "decode", #14 item 2; see cameras/ingest/decoding.py) ---
# Compressed-domain motion gate: while a camera's P-frames stay as small as those of a stretch
# its decoded pixels showed still, its frames are not decoded (every packet is still stored);
# motion resumes decoding from the open window's keyframe. Still windows are stored as skipped.
INGEST_MOTION_GATE = env_bool("INGEST_MOTION_GATE", True)
# A P-frame larger than RATIO x the still level + MARGIN_BYTES is a sign of motion.
INGEST_MOTION_GATE_RATIO = env_float("INGEST_MOTION_GATE_RATIO", 2.0)
INGEST_MOTION_GATE_MARGIN_BYTES = env_int("INGEST_MOTION_GATE_MARGIN_BYTES", 200)
# Decoding goes on this long after the last sign of motion (then stops where a window starts).
INGEST_MOTION_GATE_HOLD_SECONDS = env_float("INGEST_MOTION_GATE_HOLD_SECONDS", 4.0)
# Seconds of still decoded pixels before their P-frame sizes become the still level.
INGEST_MOTION_GATE_LEARN_SECONDS = env_float("INGEST_MOTION_GATE_LEARN_SECONDS", 2.0)
# While still, the level follows the largest P-frame of this many seconds (a scene that turned
# quieter gets a lower threshold; only pixels can raise it).
INGEST_MOTION_GATE_LEVEL_SECONDS = env_float("INGEST_MOTION_GATE_LEVEL_SECONDS", 10.0)
# Pixel motion (mean |difference| of consecutive analysis frames, 0-1): a stretch below STILL
# is still; one pair at or above MOTION is motion.
INGEST_MOTION_GATE_PIXEL_STILL = env_float("INGEST_MOTION_GATE_PIXEL_STILL", 0.001)
INGEST_MOTION_GATE_PIXEL_MOTION = env_float("INGEST_MOTION_GATE_PIXEL_MOTION", 0.004)
# Skip H.264's deblocking filter when decoding for analysis: off, because ml.video (training,
# evaluation) decodes with it and the pixels differ: ~11 % less decoding on deblocked footage,
# stage-1 scores move up to 0.028 over 24 clips (figures in bench/bench_decode.py).
INGEST_SKIP_LOOP_FILTER = env_bool("INGEST_SKIP_LOOP_FILTER", False)
# A window that fails to store for a transient database error (SQLite locked past its timeout
# by another writer, a dropped PostgreSQL connection) is tried this many times in all, waiting
# RETRY_SECONDS x the try's number between tries: the footage exists nowhere else.
INGEST_STORE_ATTEMPTS = env_int("INGEST_STORE_ATTEMPTS", 4)
INGEST_STORE_RETRY_SECONDS = env_float("INGEST_STORE_RETRY_SECONDS", 0.5)
# An ingest shard's readers hand their closed windows to one writer thread, which stores what
# has gathered in one transaction (cameras/ingest/writer.py): at most BATCH_MAX windows a
# transaction, and at most WAITING_MAX waiting (about 0.1-0.3 MB each at 640x360) before a
# reader handing over one more waits for room.
INGEST_WRITE_BATCH_MAX = env_int("INGEST_WRITE_BATCH_MAX", 64)
INGEST_WRITE_WAITING_MAX = env_int("INGEST_WRITE_WAITING_MAX", 512)
# A reader behind its stream by more than this (seconds, over its camera's own delivery delay)
# stops decoding at the next window and only records, until it is back within RESUME: decoding
# is what a box with more cameras than it can analyse runs out of, and a live camera's packets
# must be read on time or they are lost. The windows between are stored deferred and analysed
# from their originals when the load allows (detection.backpressure). Windows waiting that long
# for the shard's window writer count as behind too: footage first. 0: never.
INGEST_SHED_LAG_SECONDS = env_float("INGEST_SHED_LAG_SECONDS", 2.0)
INGEST_SHED_RESUME_SECONDS = env_float("INGEST_SHED_RESUME_SECONDS", 0.5)
# How often run_ingest publishes its readers' totals to Redis for the bench (seconds).
INGEST_STATS_SECONDS = env_float("INGEST_STATS_SECONDS", 5.0)
# Most windows one inference task scores in one model call.
INFERENCE_BATCH_MAX = env_int("INFERENCE_BATCH_MAX", 32)
# Cores one stage-1 model call may use; 0: TensorFlow's choice (all of them). One, because on
# the box that also runs ingestion the cores are never free: a call split over two waits for
# whichever thread the scheduler put aside, and spends more CPU doing it (2-core AMD EPYC, both
# cores busy: 6.6 -> 5.2 CPU ms a window, wall 7.2 -> 8.4 ms). A host that only runs inference
# sets it to its cores.
INFERENCE_TF_THREADS = env_int("INFERENCE_TF_THREADS", 1)
# How long decoded analysis frames wait in Redis for the inference worker.
INFERENCE_FRAMES_TTL_SECONDS = env_int("INFERENCE_FRAMES_TTL_SECONDS", 3600)
# Redis key prefix of the pipeline's own keys (pending list, frame cache).
PIPELINE_REDIS_PREFIX = env_str("PIPELINE_REDIS_PREFIX", "abusewatch")
EDGE_CLIP_MIN_SECONDS = env_float("EDGE_CLIP_MIN_SECONDS", 0.5)
EDGE_CLIP_MAX_SECONDS = env_float("EDGE_CLIP_MAX_SECONDS", 30.0)
# Routes, not per-task `queue=` (deprecated in Celery 5, removed in 6): inference tasks go to
# the model-holding workers, everything else to CELERY_TASK_DEFAULT_QUEUE.
CELERY_TASK_ROUTES: dict[str, dict[str, str]] = {
    # Blurred working copies take tens of seconds of CPU each: on their own queue, served by
    # its own worker, so a police report or an alert on `default` never waits behind them
    # (a violent case went unreported for minutes while transcodes filled `default`).
    "reports.make_working_copies": {"queue": "media"},
    "detection.*": {"queue": "inference"},
}
# Stage 2 of the cascade (pose) on its own queue, e.g. "pose", served by a separate inference
# worker (a GPU host when one exists): the `inference` workers then load stage 1 alone and send
# each window that passes the gate there. Empty: the inference worker runs both stages.
INFERENCE_POSE_QUEUE = env_str("INFERENCE_POSE_QUEUE", "")
if INFERENCE_POSE_QUEUE:
    # An exact name wins over the "detection.*" pattern.
    CELERY_TASK_ROUTES = {
        "detection.score_stage2": {"queue": INFERENCE_POSE_QUEUE},
        **CELERY_TASK_ROUTES,
    }

# --- Processes (helper "bench", issue #14): ingest shards ---------------------------------------
# How many `run_ingest --shard I/N` processes the supervisor (`bin/run`) starts. 0 = one per
# core (abusewatch.supervisor.ingest_shard_count): each process has its own GIL, and the
# per-frame Python work of 32+ readers saturated one process's GIL (1.42 cores of ingestion
# at 32 cameras, footage lost); more processes than cores only add memory.
INGEST_SHARDS = env_int("INGEST_SHARDS", 0)
if INGEST_SHARDS < 0:
    raise ImproperlyConfigured("INGEST_SHARDS must be 0 (one per core) or a positive count")

# --- Backpressure: inference that keeps up, and says so when it cannot (issue #14, 4-5) -------
# See detection/backpressure.py. A window stored longer ago than this when the inference worker
# reaches it is deferred (scored later, in idle time, oldest first) so fresh windows keep a
# bounded latency.
INFERENCE_MAX_LAG_SECONDS = env_float("INFERENCE_MAX_LAG_SECONDS", 30.0)
# A deferred window not scored within this long after it was stored is skipped with the
# reason; it never stays pending forever. Checked by the reconciler (beat).
INFERENCE_DEFERRED_MAX_AGE_SECONDS = env_float("INFERENCE_DEFERRED_MAX_AGE_SECONDS", 600.0)
# Stage 2 (pose) runs on a gated window only while the window's age plus the measured cost
# of the stage-2 work ahead of it stays under this; else the window is decided on stage 1
# alone and its detection says "over_capacity".
INFERENCE_STAGE2_MAX_LAG_SECONDS = env_float("INFERENCE_STAGE2_MAX_LAG_SECONDS", 10.0)
# The cost of one stage-2 window assumed until one has been measured (about one core-second
# on a 2-core AVX2 CPU: whole frame + 2 tiles, 12 frames, the original decoded).
INFERENCE_STAGE2_COST_SECONDS = env_float("INFERENCE_STAGE2_COST_SECONDS", 1.0)
# Pose workers serving INFERENCE_POSE_QUEUE (on this host and others, README "A separate
# inference host"): they drain the queue together, so the stage-2 wait ahead of a new window is
# the queue's depth times the cost divided by this.
INFERENCE_POSE_WORKERS = env_int("INFERENCE_POSE_WORKERS", 1)
if INFERENCE_POSE_WORKERS < 1:
    raise ImproperlyConfigured("INFERENCE_POSE_WORKERS must be 1 or more")
# Windows deferred, skipped for capacity or decided without stage 2 in this many recent
# minutes show the camera as "Over capacity" to its centre's admins and to operators.
CAPACITY_NOTICE_MINUTES = env_int("CAPACITY_NOTICE_MINUTES", 5)
# Refused at start rather than misbehaving later: a negative bound means nothing, and a window
# deferred after INFERENCE_MAX_LAG_SECONDS must have time left before it is skipped.
if min(INFERENCE_MAX_LAG_SECONDS, INFERENCE_STAGE2_MAX_LAG_SECONDS) < 0:
    raise ImproperlyConfigured(
        "INFERENCE_MAX_LAG_SECONDS and INFERENCE_STAGE2_MAX_LAG_SECONDS must be 0 or more"
    )
if INFERENCE_DEFERRED_MAX_AGE_SECONDS <= INFERENCE_MAX_LAG_SECONDS:
    raise ImproperlyConfigured(
        "INFERENCE_DEFERRED_MAX_AGE_SECONDS must be longer than INFERENCE_MAX_LAG_SECONDS"
    )
