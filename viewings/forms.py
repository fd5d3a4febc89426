from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from cameras.models import Camera, Site
from viewings.models import ViewingRequest


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


def _local_datetime_field(label: Any) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label, widget=LocalDateTimeInput(), input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
    )


class ViewingRequestForm(forms.Form):
    """Times are read in the site's zone (the view activates it)."""

    camera = forms.ModelChoiceField(label=_("Camera"), queryset=Camera.objects.none())
    group_or_room = forms.CharField(label=_("Group or room"), max_length=120)
    child_label = forms.CharField(
        label=_("Child"), max_length=120, help_text=_("As the centre knows the child.")
    )
    guardian_name = forms.CharField(label=_("Guardian"), max_length=120)
    guardian_contact = forms.CharField(
        label=_("Guardian contact"),
        max_length=120,
        help_text=_("One phone number or e-mail address, nothing more."),
    )
    starts_at = _local_datetime_field(_("From"))
    ends_at = _local_datetime_field(_("Until"))
    reason = forms.CharField(
        label=_("Reason"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )
    attachment = forms.FileField(
        label=_("Attachment (request form, doctor's note)"),
        required=False,
        help_text=_("PDF, JPEG or PNG."),
    )

    def __init__(self, *args: Any, site: Site, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["camera"].queryset = site.cameras.all()  # type: ignore[attr-defined]


class ScheduleForm(forms.Form):
    appointment_at = _local_datetime_field(_("Viewing date and time"))
    appointment_place = forms.CharField(label=_("Place"), max_length=200)


class TakeoutForm(forms.Form):
    recipient = forms.CharField(label=_("Recipient"), max_length=120)
    child_x = forms.FloatField(label=_("Child box: left (0-1)"), min_value=0, max_value=1)
    child_y = forms.FloatField(label=_("top (0-1)"), min_value=0, max_value=1)
    child_w = forms.FloatField(label=_("width (0-1)"), min_value=0.01, max_value=1)
    child_h = forms.FloatField(label=_("height (0-1)"), min_value=0.01, max_value=1)


class CloseForm(forms.Form):
    outcome = forms.ChoiceField(label=_("Outcome"), choices=ViewingRequest.Outcome.choices)
    note = forms.CharField(
        label=_("Note"), max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class AttachmentForm(forms.Form):
    attachment = forms.FileField(label=_("Attachment (request form, doctor's note)"))


class AccessLogFilter(forms.Form):
    day_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    day_to = forms.DateField(
        label=_("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    camera = forms.ModelChoiceField(
        label=_("Camera"), queryset=Camera.objects.none(), required=False
    )

    def __init__(self, *args: Any, site: Site, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["camera"].queryset = site.cameras.all()  # type: ignore[attr-defined]
