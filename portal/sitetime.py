"""Every time a person reads, in the site's zone with its abbreviation, in one format.

Rendered rows and live rows (built by the browser from socket messages) once differed: the
browser used its own zone and locale, so one table mixed "11/30/2026, 1:34:05 PM" beside
"2026-11-30 22:34:05", and a camera's last frame read 9 hours before the case it showed
(issue #15). Both now use this one function: pages through the `sitetime` filter, live
messages through a `*_display` field formatted on the server.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

FORMAT = "%Y-%m-%d %H:%M:%S %Z"
SHORT_FORMAT = "%H:%M:%S %Z"


def site_zone(name: str) -> dt.tzinfo:
    """The named zone; UTC for a blank or unknown name rather than an error on a page."""
    try:
        return zoneinfo.ZoneInfo(name) if name else dt.UTC
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def site_time(value: dt.datetime | None, zone: str, *, short: bool = False) -> str:
    """'2026-11-30 22:34:05 KST' (or '22:34:05 KST' with short); '' for no time."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(site_zone(zone)).strftime(SHORT_FORMAT if short else FORMAT)
