"""Failed sign-ins limited per user name and client address, so passwords cannot be guessed
without limit through the login page or the API's token endpoint, and so the limit cannot be
turned against users who know their password.

- Names are counted as the sign-in form reads them (NFKC-normalised, case-folded, trimmed):
  "police-gangnam" in fullwidth letters and "POLICE-GANGNAM" are one account, one count.
- The lock is per name AND address: after LOGIN_FAILURES_PER_ACCOUNT failures, that name is
  refused from that address only, for LOGIN_LOCK_SECONDS doubling at each further lock (capped
  at LOGIN_LOCK_MAX_SECONDS). Someone guessing Alice's password from elsewhere does not lock
  Alice out of her own desk.
- An address with LOGIN_FAILURES_PER_ADDRESS failures (random names, a spray) is throttled, not
  locked: from it, each name then gets ONE try before its own lock. A user who knows their
  password still signs in at the first try, even behind a proxy the attacker shares.
- Each lock of a name is an operator alert: an audit event and an `ops.alert` message.

Counts live in Django's cache: Redis wherever REDIS_URL is set (shared by every web process),
otherwise the process's own memory, which is enough for the one-process embedded setup.

While that Redis is unreachable, counts fall back to the process's own memory (with a logged
warning) rather than failing sign-in with a 500 or letting every attempt through: users who
know their password can still sign in, and guessing stays limited per web process. Counts
made during the outage are not carried back into Redis.
"""

from __future__ import annotations

import hashlib
import logging
import time
import unicodedata
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache as _shared_cache
from django.core.cache.backends.locmem import LocMemCache

from access.policy import OPERATORS_GROUP
from alerts.broadcast import broadcast
from audit.models import AuditEvent
from audit.services import audit_record

logger = logging.getLogger(__name__)


class _CacheWithLocalFallback:
    """Django's cache, or this process's memory for the calls the shared cache cannot answer."""

    WARN_EVERY_SECONDS = 60.0

    def __init__(self) -> None:
        self._local = LocMemCache("login-throttle-fallback", {"TIMEOUT": None})
        self._warned_at = float("-inf")

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return getattr(_shared_cache, name)(*args, **kwargs)
            except ValueError:  # incr() of a missing key: the callers' own signal
                raise
            except Exception as error:  # redis-py's ConnectionError, TimeoutError, OSError...
                now = time.monotonic()
                if now - self._warned_at >= self.WARN_EVERY_SECONDS:
                    self._warned_at = now
                    logger.warning(
                        "sign-in limiter: shared cache unavailable (%s); counting failed "
                        "sign-ins in this process's memory",
                        type(error).__name__,
                    )
                return getattr(self._local, name)(*args, **kwargs)

        return call


cache = _CacheWithLocalFallback()


def normalised_username(username: str) -> str:
    """The name as the sign-in form and the account lookup would treat it."""
    return unicodedata.normalize("NFKC", username).strip().casefold()


def _digest(text: str) -> str:
    # Hashed: the cache never holds the typed user names, which are sometimes passwords.
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _pair(username: str, ip_address: str | None) -> str:
    return f"{_digest(normalised_username(username))}:{ip_address or '-'}"


def _count(key: str, timeout: int) -> int:
    # add() starts the window on the first failure; incr() keeps its expiry.
    if cache.add(key, 1, timeout=timeout):
        return 1
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add() and incr()
        cache.add(key, 1, timeout=timeout)
        return 1


def login_retry_after(username: str, ip_address: str | None) -> int:
    """Seconds until this name may try again from this address; 0 when it may now."""
    until = cache.get(f"login-lock:{_pair(username, ip_address)}")
    if until is None:
        return 0
    return max(0, int(float(until) - time.time()) + 1)


def login_blocked(username: str, ip_address: str | None) -> bool:
    """True while this name is locked from this address."""
    return login_retry_after(username, ip_address) > 0


def login_failed(username: str, ip_address: str | None) -> bool:
    """Count one failure; True when it locked the name from this address."""
    window = int(settings.LOGIN_FAILURE_WINDOW_SECONDS)
    pair = _pair(username, ip_address)
    address_failures = _count(f"login-fail:ip:{ip_address}", window) if ip_address else 0
    address_throttled = address_failures >= int(settings.LOGIN_FAILURES_PER_ADDRESS)
    limit = 1 if address_throttled else int(settings.LOGIN_FAILURES_PER_ACCOUNT)
    failures = _count(f"login-fail:pair:{pair}", window)
    if failures < limit:
        return False
    level = _count(f"login-locks:pair:{pair}", 4 * int(settings.LOGIN_LOCK_MAX_SECONDS))
    seconds = min(
        int(settings.LOGIN_LOCK_MAX_SECONDS), int(settings.LOGIN_LOCK_SECONDS) * 2 ** (level - 1)
    )
    cache.set(f"login-lock:{pair}", time.time() + seconds, timeout=seconds)
    cache.delete(f"login-fail:pair:{pair}")
    if failures >= int(settings.LOGIN_FAILURES_PER_ACCOUNT):
        # A spray's one-try locks are not alerts each; a name's own run of failures is.
        _alert_operators(username, ip_address, failures=failures, seconds=seconds)
    return True


def login_succeeded(username: str, ip_address: str | None = None) -> None:
    """This name starts again from this address; the address's own count does not."""
    pair = _pair(username, ip_address)
    cache.delete_many([f"login-fail:pair:{pair}", f"login-locks:pair:{pair}"])


def retry_minutes(username: str = "", ip_address: str | None = None) -> int:
    seconds = login_retry_after(username, ip_address) if username or ip_address else 0
    seconds = seconds or int(settings.LOGIN_LOCK_SECONDS)
    return max(1, round(seconds / 60))


def _alert_operators(username: str, ip_address: str | None, *, failures: int, seconds: int) -> None:
    """Operators learn of each lock: someone is guessing a password."""
    details = {
        # The name as typed is not stored (it may be a password typed in the wrong field):
        # its digest matches the account's digest when an operator checks a suspicion.
        "username_digest": _digest(normalised_username(username)),
        "failures": failures,
        "locked_seconds": seconds,
    }
    logger.warning(
        "Sign-in locked for %ss after %s failures from %s", seconds, failures, ip_address
    )
    audit_record(
        actor=None,
        action="login.locked",
        ip_address=ip_address,
        outcome=AuditEvent.Outcome.FAILED,
        details=details,
    )
    broadcast(
        [OPERATORS_GROUP],
        {"type": "ops.alert", "alert": "login.locked", "ip_address": ip_address, **details},
    )
