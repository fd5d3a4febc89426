from __future__ import annotations

from django.apps import AppConfig


class ViewingsConfig(AppConfig):
    name = "viewings"
    verbose_name = "Parents' viewing requests and the director's access log"

    def ready(self) -> None:
        from viewings import tasks  # noqa: F401  (registers the reminder task)
