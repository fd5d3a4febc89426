"""Failed sign-ins counted per account and per client address, so passwords cannot be guessed
without limit through the login page or the API's token endpoint.

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
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache as _shared_cache
from django.core.cache.backends.locmem import LocMemCache

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


def _keys(username: str, ip_address: str | None) -> list[str]:
    # Hashed: the cache never holds the typed user names, which are sometimes passwords.
    account = hashlib.sha256(username.strip().lower().encode("utf-8")).hexdigest()[:32]
    keys = [f"login-fail:user:{account}"]
    if ip_address:
        keys.append(f"login-fail:ip:{ip_address}")
    return keys


def _limits() -> list[int]:
    return [settings.LOGIN_FAILURES_PER_ACCOUNT, settings.LOGIN_FAILURES_PER_ADDRESS]


def login_blocked(username: str, ip_address: str | None) -> bool:
    """True while the account or the address has used up its failed attempts."""
    keys = _keys(username, ip_address)
    counts = cache.get_many(keys)
    return any(counts.get(key, 0) >= limit for key, limit in zip(keys, _limits(), strict=False))


def login_failed(username: str, ip_address: str | None) -> None:
    for key in _keys(username, ip_address):
        # add() starts the window on the first failure; incr() keeps its expiry.
        if not cache.add(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS):
            try:
                cache.incr(key)
            except ValueError:  # expired between add() and incr()
                cache.add(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)


def login_succeeded(username: str) -> None:
    """The account's own count starts again; the address's does not."""
    cache.delete(_keys(username, None)[0])


def retry_minutes() -> int:
    return max(1, round(settings.LOGIN_FAILURE_WINDOW_SECONDS / 60))
