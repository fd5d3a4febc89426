from __future__ import annotations

from typing import Any

from django.urls import path

from detection.consumers import AlertConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/alerts/", AlertConsumer.as_asgi(), name="ws-alerts"),
]
