from __future__ import annotations

from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts: live broadcast, webhooks, MQTT"

    def ready(self) -> None:
        # Registers the tasks in every process, so that queueing them by name (they are
        # queued from alerts.notifications, which the tasks import) runs them eagerly where
        # Celery is set to.
        from alerts import tasks  # noqa: F401
