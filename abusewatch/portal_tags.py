from __future__ import annotations

from django import template
from django.utils.html import json_script
from django.utils.safestring import SafeString
from django.utils.translation import pgettext

from cameras.models import Camera
from detection.models import Band, Case
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
        "action": {"open": pgettext("action", "Open")},
    }
    return json_script(labels, "status-labels")
