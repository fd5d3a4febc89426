from __future__ import annotations

import datetime as dt

from django import template
from django.utils.html import json_script
from django.utils.safestring import SafeString
from django.utils.translation import pgettext

from cameras.models import Camera
from cameras.status_details import FIXED_DETAILS, FIXED_OPENINGS, detail_display
from detection.models import Band, Case
from portal.sitetime import site_time
from reports.models import PoliceReport

register = template.Library()


@register.simple_tag
def status_labels() -> SafeString:
    """Translated names of every status, for live updates that arrive as bare values."""
    labels = {
        "case": {value: str(label) for value, label in Case.Status.choices},
        "camera": {value: str(label) for value, label in Camera.Status.choices},
        "report": {value: str(label) for value, label in PoliceReport.Status.choices},
        "band": {value: str(label) for value, label in Band.choices},
        "reason": {value: str(label) for value, label in PoliceReport.Reason.choices},
        "action": {"open": pgettext("action", "Open")},
        "detail": {detail: detail_display(detail) for detail in FIXED_DETAILS},
        # Fixed openings of details that go on with an error message (a live row translates
        # the opening and keeps the rest).
        "detail_opening": {opening: detail_display(opening) for opening in FIXED_OPENINGS},
    }
    return json_script(labels, "status-labels")


@register.filter
def camera_detail(value: object) -> str:
    """A camera's health detail in the reader's language where it is a fixed one."""
    return detail_display(str(value or ""))


@register.filter
def sitetime(value: object, zone: str) -> str:
    """A time in the site's zone with its abbreviation: `{{ case.started_at|sitetime:tz }}`."""
    return site_time(value, zone) if isinstance(value, dt.datetime) else ""


@register.filter
def sitetime_short(value: object, zone: str) -> str:
    """The time of day only, in the site's zone with its abbreviation."""
    return site_time(value, zone, short=True) if isinstance(value, dt.datetime) else ""
