from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from reports.models import PoliceReport


class ReportStatusForm(forms.Form):
    status = forms.ChoiceField(label=_("New status"), choices=())
    note = forms.CharField(
        label=_("Note"), required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args: object, report: PoliceReport, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        allowed = PoliceReport.TRANSITIONS[report.status]
        field = self.fields["status"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(v, label) for v, label in PoliceReport.Status.choices if v in allowed]
