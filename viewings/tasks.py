from __future__ import annotations

from celery import shared_task

from viewings.services import viewing_remind


@shared_task(name="viewings.remind", acks_late=True, max_retries=0)
def remind() -> int:
    """Hourly: remind site admins of viewing requests near or past their reply deadline
    (each request at most once a day, in its site's calendar)."""
    return len(viewing_remind())
