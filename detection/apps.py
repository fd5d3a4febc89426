from __future__ import annotations

from django.apps import AppConfig


class DetectionConfig(AppConfig):
    name = "detection"
    verbose_name = "Detection and cases"

    def ready(self) -> None:
        # Registers the tasks in every process: the pipeline queues them by name (the tasks
        # import the pipeline), and a registered name runs eagerly where Celery is set to.
        from detection import tasks  # noqa: F401
