"""Waiting on a page from Python in the browser journeys."""

from __future__ import annotations

import time
from collections.abc import Callable


def until(ready: Callable[[], object], *, seconds: float) -> None:
    """Poll from Python until `ready()` is truthy. Playwright's `wait_for_function` evaluates a
    string in the page, which the pages' Content-Security-Policy (no 'unsafe-eval') refuses;
    `page.evaluate` runs through the DevTools protocol and is not subject to it."""
    deadline = time.monotonic() + seconds
    while not ready():
        assert time.monotonic() < deadline, f"timed out after {seconds} s"
        time.sleep(0.2)
