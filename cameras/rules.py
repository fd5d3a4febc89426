"""The rules of a camera's settings, written once: the model, the form and the API serializer
all show back these same messages."""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


def camera_setting_errors(
    *,
    low: float | None,
    high: float | None,
    window: float | None,
    overlap: float | None,
) -> dict[str, Promise]:
    """Field name -> message for each broken rule; empty when the settings hold together."""
    errors: dict[str, Promise] = {}
    if low is not None and high is not None and low >= high:
        errors["low_threshold"] = _("The low threshold must be below the high threshold.")
    if window is not None and overlap is not None and overlap >= window:
        errors["window_overlap_seconds"] = _("The overlap must be shorter than the window.")
    return errors
