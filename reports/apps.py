from __future__ import annotations

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Police reports, evidence and working copies"

    def ready(self) -> None:
        # Registers `reports.report_case` in every process: detection and reviews queue it by
        # name, and a registered name runs eagerly where Celery is set to.
        from reports import tasks  # noqa: F401
