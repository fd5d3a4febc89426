from __future__ import annotations

from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "abusewatch.operations"
    label = "operations"
    verbose_name = "Operations: retention, redaction, metrics, notifications"
