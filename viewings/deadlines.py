"""The reply deadline of a viewing request, counted in the site's own calendar.

The day the request arrives is not counted (민법 제157조, the first day is excluded): a request
received on the 1st must be answered by the end of the 11th under a 10-day rule, and is
overdue from the 12th, its day 11. Days are the site's days, not the server's: a request that
arrives at 00:30 in Seoul is that Seoul day's, even though it is still the day before in UTC.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo


def reply_due_date(*, received_at: dt.datetime, zone: str, days: int) -> dt.date:
    local_day = received_at.astimezone(zoneinfo.ZoneInfo(zone)).date()
    return local_day + dt.timedelta(days=days)


def is_overdue(*, due: dt.date, now: dt.datetime, zone: str) -> bool:
    return now.astimezone(zoneinfo.ZoneInfo(zone)).date() > due


def days_left(*, due: dt.date, now: dt.datetime, zone: str) -> int:
    """Whole days until the deadline in the site's calendar; negative once overdue."""
    return (due - now.astimezone(zoneinfo.ZoneInfo(zone)).date()).days
