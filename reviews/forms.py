from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from reviews.models import ReviewDecision
from reviews.selectors import QUEUE_SORTS

# A case is seconds to minutes of footage; a day is a generous ceiling for a typed number.
MAX_SPAN_SECONDS = 86_400.0


class QueueFilterForm(forms.Form):
    sort = forms.ChoiceField(
        label=_("Sort"),
        required=False,
        choices=[
            ("score", _("Highest score first")),
            ("-score", _("Lowest score first")),
            ("-time", _("Newest first")),
            ("time", _("Oldest first")),
        ],
    )
    # Bounded to the primary key's range: a larger number is no site, and the database driver
    # cannot even bind it (OverflowError on SQLite).
    site = forms.IntegerField(label=_("Site"), required=False, min_value=1, max_value=2**63 - 1)
    region = forms.CharField(label=_("Region"), required=False, max_length=100)

    def clean_sort(self) -> str:
        value = self.cleaned_data.get("sort") or "score"
        return value if value in QUEUE_SORTS else "score"


class ReviewForm(forms.Form):
    verdict = forms.ChoiceField(
        label=_("Verdict"), choices=ReviewDecision.Verdict.choices, widget=forms.RadioSelect
    )
    category = forms.ChoiceField(
        label=_("Category"),
        # An empty first choice: without it the browser submits the first category ("hitting")
        # for every verdict, and a "not abuse" review was stored as hitting.
        choices=[("", _("— only for abuse —"))]
        + [c for c in ReviewDecision.Category.choices if c[0] != ReviewDecision.Category.NONE],
        required=False,
    )
    span_start_seconds = forms.FloatField(
        label=_("From (s)"), required=False, min_value=0, max_value=MAX_SPAN_SECONDS
    )
    span_end_seconds = forms.FloatField(
        label=_("To (s)"), required=False, min_value=0, max_value=MAX_SPAN_SECONDS
    )
    notes = forms.CharField(
        label=_("Notes"), required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3})
    )
    outcome = forms.ChoiceField(
        label=_("Decision"),
        choices=[
            (ReviewDecision.Outcome.ESCALATE, _("Escalate to police")),
            (ReviewDecision.Outcome.DISMISS, _("Dismiss")),
        ],
        widget=forms.RadioSelect,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("span_start_seconds"), data.get("span_end_seconds")
        if start is not None and end is not None and end < start:
            self.add_error("span_end_seconds", _("The end must not come before the start."))
        verdict = data.get("verdict")
        if verdict == ReviewDecision.Verdict.ABUSE and not data.get("category"):
            self.add_error("category", _("Say what kind of act you saw."))
        if verdict != ReviewDecision.Verdict.ABUSE or not data.get("category"):
            # A category describes an act of abuse; with any other verdict none is kept.
            data["category"] = ReviewDecision.Category.NONE
        return data
