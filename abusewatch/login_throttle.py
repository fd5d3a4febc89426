"""Failed sign-ins counted per account and per client address, so passwords cannot be guessed
without limit through the login page or the API's token endpoint.

Counts live in Django's cache: Redis wherever REDIS_URL is set (shared by every web process),
otherwise the process's own memory, which is enough for the one-process embedded setup.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache


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
