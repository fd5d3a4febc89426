"""Health of the parts a deployment needs: database, broker, workers, the analysis backlog.

Workers fail when none answers a ping or any has a stale heartbeat (abusewatch.heartbeat:
hung, e.g. SIGSTOPped); the backlog fails when a window has waited for the model longer than
HEALTHZ_PENDING_MAX_AGE_SECONDS. Windows deferred for capacity (detection.backpressure) are a
known state, shown as "over capacity", not a stuck pipeline: they fail the check only once one
outlives its own bound (INFERENCE_DEFERRED_MAX_AGE_SECONDS plus two reconciler runs), which
means the reconciler that skips them is not running.

Each check says only up or down and the kind of error, never its message: a connection
error can carry a host name, a user or a password.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection

from abusewatch import heartbeat, ingest_shard
from abusewatch.celery import app
from alerts.live import redis_client
from detection.inference import model_files_problem, served_model_dir
from detection.reconcile import pending_summary


def _error(exc: BaseException) -> dict[str, Any]:
    return {"ok": False, "error": type(exc).__name__}


def check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return _error(exc)
    return {"ok": True}


def check_broker() -> dict[str, Any]:
    client = redis_client()
    if client is None:
        # No REDIS_URL: Celery runs tasks in the calling process; there is no broker to lose.
        return {"ok": True, "mode": "in-process"}
    try:
        client.ping()
    except Exception as exc:
        return _error(exc)
    finally:
        client.close()
    return {"ok": True}


def check_workers() -> dict[str, Any]:
    if not settings.REDIS_URL:
        return {"ok": True, "mode": "in-process"}
    try:
        replies = app.control.ping(timeout=settings.HEALTHZ_WORKER_TIMEOUT_SECONDS)
    except Exception as exc:
        return _error(exc)
    count = len(replies or [])
    result: dict[str, Any] = {"ok": count > 0, "count": count}
    try:
        beats = heartbeat.beats_read()
    except Exception as exc:
        return _error(exc)
    stale = [beat for beat in beats if beat.age_seconds > settings.WORKER_HEARTBEAT_STALE_SECONDS]
    # Ingest shards (abusewatch.ingest_shard) beat too: a hung shard is counted in `hung`
    # like a hung worker; how many shards beat tells an operator whether all N run.
    shards = sum(1 for beat in beats if beat.worker.startswith(ingest_shard.BEAT_PREFIX))
    if shards:
        result["ingest_shards"] = shards
    if stale:
        # A hung worker keeps its messages while the others answer the ping. Counted, not
        # named: worker names carry host names.
        result.update(ok=False, hung=len(stale))
    return result


def check_pending() -> dict[str, Any]:
    """Windows waiting for the model: too old means the pipeline is stuck (see reconcile)."""
    try:
        count, oldest = pending_summary(deferred=False)
        deferred, oldest_deferred = pending_summary(deferred=True)
    except Exception as exc:
        return _error(exc)
    deferred_bound = (
        settings.INFERENCE_DEFERRED_MAX_AGE_SECONDS + 2 * settings.RECONCILE_INTERVAL_SECONDS
    )
    return {
        "ok": oldest <= settings.HEALTHZ_PENDING_MAX_AGE_SECONDS
        and oldest_deferred <= deferred_bound,
        "count": count,
        "oldest_seconds": round(oldest, 1),
        "deferred": deferred,
        "oldest_deferred_seconds": round(oldest_deferred, 1),
    }


def check_model() -> dict[str, Any]:
    """The model version the inference workers serve: every file there and unaltered. The
    reason names the file (relative to the project), which is what an operator must fix."""
    problem = model_files_problem(served_model_dir())
    if problem is None:
        return {"ok": True}
    return {
        "ok": False,
        "error": "ModelFiles",
        "reason": problem.replace(f"{settings.BASE_DIR}/", ""),
    }


def health() -> dict[str, Any]:
    checks = {
        "database": check_database(),
        "broker": check_broker(),
        "model": check_model(),
    }
    # Asking workers over a broker that is down would only wait for the connection to fail.
    checks["workers"] = (
        check_workers() if checks["broker"]["ok"] else {"ok": False, "error": "BrokerDown"}
    )
    checks["pending"] = (
        check_pending() if checks["database"]["ok"] else {"ok": False, "error": "DatabaseDown"}
    )
    return {
        "status": "ok" if all(c["ok"] for c in checks.values()) else "unavailable",
        **{"checks": checks},
    }
