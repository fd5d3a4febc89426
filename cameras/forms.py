from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from cameras.models import Camera, Site
from cameras.rules import camera_setting_errors
from cameras.services import CAMERA_EDITABLE_FIELDS
from cameras.sources import SourceError, parse_source_uri


def checked_source_uri(value: str) -> str:
    """A source field's value stripped, or the parser's reason it is not a source (the camera
    form's and the admin's check of `source_uri` and `analysis_uri`)."""
    uri = value.strip()
    if uri:
        try:
            parse_source_uri(uri)
        except SourceError as exc:
            raise forms.ValidationError(str(exc)) from exc
    return uri


class CameraForm(forms.ModelForm[Camera]):
    """Camera fields with the database's ranges, so a bad value names its field."""

    name = forms.CharField(label=_("Name"), max_length=120)
    source_uri = forms.CharField(
        label=_("Source"),
        max_length=1000,
        required=False,
        help_text=_(
            "rtsp://user:password@host:554/stream or http(s)://host/video; a file path or "
            "/dev/video0 for operators only. Leave blank for an edge device that pushes clips."
        ),
    )
    analysis_uri = forms.CharField(
        label=_("Detect stream (optional)"),
        max_length=1000,
        required=False,
        help_text=_(
            "A lower-resolution stream of the same camera, used only for analysis. Footage is "
            "always recorded from the main source."
        ),
    )
    enabled = forms.BooleanField(label=_("Enabled"), required=False, initial=True)
    analysis_fps = forms.FloatField(
        label=_("Analysis frames per second"), min_value=0.1, max_value=60, initial=10.0
    )
    window_seconds = forms.FloatField(
        label=_("Window length (s)"), min_value=0.5, max_value=30, initial=2.0
    )
    window_overlap_seconds = forms.FloatField(
        label=_("Window overlap (s)"), min_value=0, max_value=29.9, initial=0.0
    )
    low_threshold = forms.FloatField(
        label=_("Low threshold"),
        min_value=0,
        max_value=1,
        required=False,
        help_text=_("Blank: the active model's."),
    )
    high_threshold = forms.FloatField(
        label=_("High threshold"),
        min_value=0,
        max_value=1,
        required=False,
        help_text=_("Blank: the active model's."),
    )

    class Meta:
        model = Camera
        fields = list(CAMERA_EDITABLE_FIELDS)

    def __init__(self, *args: Any, site: Site, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.site = site

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("Give the camera a name."))
        clash = Camera.objects.filter(site=self.site, name=name).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(_("This site already has a camera with this name."))
        return name

    def clean_source_uri(self) -> str:
        return checked_source_uri(self.cleaned_data.get("source_uri", ""))

    def clean_analysis_uri(self) -> str:
        return checked_source_uri(self.cleaned_data.get("analysis_uri", ""))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        errors = camera_setting_errors(
            low=data.get("low_threshold"),
            high=data.get("high_threshold"),
            window=data.get("window_seconds"),
            overlap=data.get("window_overlap_seconds"),
            source=data.get("source_uri"),
            analysis=data.get("analysis_uri"),
        )
        for field, message in errors.items():
            self.add_error(field, str(message))
        return data

    def _post_clean(self) -> None:
        # The service validates the model (with its site) when it saves; don't validate a
        # half-built instance here.
        pass


class DayForm(forms.Form):
    day = forms.DateField(
        label=_("Day"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean_day(self) -> dt.date | None:
        day: dt.date | None = self.cleaned_data.get("day")
        if day is not None and not dt.date(2000, 1, 1) <= day <= dt.date(2100, 1, 1):
            raise forms.ValidationError(_("Choose a day between 2000 and 2100."))
        return day


class SiteRetentionForm(forms.Form):
    """How many days a centre keeps safe footage; the law's minimum is checked by the model."""

    retention_days = forms.IntegerField(
        label=_("Keep footage for (days)"), min_value=1, max_value=3650
    )

    def __init__(self, *args: Any, site: Site, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.site = site
        law = site.law
        self.fields["retention_days"].help_text = _(
            "At least %(days)d days (%(reference)s); longer is your choice."
        ) % {"days": law.min_retention_days, "reference": law.retention_reference}
        self.fields["retention_days"].initial = site.retention_hours // 24
