from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from detection.models import Case


def validate_regions(value: object) -> None:
    if not isinstance(value, list) or not all(
        isinstance(region, str) and region.strip() for region in value
    ):
        raise ValidationError(
            _('A list of region names, such as ["Seoul"]; an empty list [] for every region.')
        )


class ExpertProfile(models.Model):
    """Makes a user a child-protection expert; an empty `regions` list means every region."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="expert_profile"
    )
    regions = models.JSONField(default=list, blank=True)
    organisation = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"Expert {self.user}"

    def clean(self) -> None:
        # Here rather than as a field validator: Django skips those for {} and "", which are
        # exactly the values that must not be taken for "every region".
        try:
            validate_regions(self.regions)
        except ValidationError as exc:
            raise ValidationError({"regions": exc.messages}) from exc

    @property
    def covers_every_region(self) -> bool:
        # Only the empty list: {}, "" or null written past the form's validation are just as
        # falsy, and must grant nothing rather than every region.
        return isinstance(self.regions, list) and not self.regions

    def region_names(self) -> list[str]:
        """The named regions; a malformed stored value names none."""
        if not isinstance(self.regions, list):
            return []
        return [region for region in self.regions if isinstance(region, str) and region.strip()]


class ReviewDecision(models.Model):
    class Verdict(models.TextChoices):
        ABUSE = "abuse", _("Abuse")
        NOT_ABUSE = "not_abuse", _("Not abuse")
        UNSURE = "unsure", _("Unsure")

    class Category(models.TextChoices):
        HITTING = "hitting", _("Hitting")
        PUSHING = "pushing", _("Pushing")
        KICKING = "kicking", _("Kicking")
        THROWING = "throwing", _("Throwing")
        RESTRAINT = "restraint", _("Restraint")
        OTHER = "other", _("Other")
        NONE = "none", _("None")

    class Outcome(models.TextChoices):
        ESCALATE = "escalate", _("Escalate to police")
        DISMISS = "dismiss", _("Dismiss")
        NONE = "none", _("No decision (label only)")

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="decisions")
    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    category = models.CharField(max_length=10, choices=Category.choices, default=Category.NONE)
    # Seconds from the start of the case's footage where the labelled act happens.
    span_start_seconds = models.FloatField(null=True, blank=True)
    span_end_seconds = models.FloatField(null=True, blank=True)
    notes = models.TextField(blank=True, max_length=5000)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.NONE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["case", "expert"], name="one_decision_per_expert"),
            models.CheckConstraint(
                condition=Q(span_start_seconds__isnull=True)
                | Q(span_end_seconds__isnull=True)
                | (Q(span_start_seconds__gte=0) & Q(span_end_seconds__gte=F("span_start_seconds"))),
                name="decision_span_ordered",
            ),
            # A category describes an act of abuse; any other verdict carries none (issue #15:
            # "not abuse" reviews were stored, shown and exported as "hitting").
            models.CheckConstraint(
                condition=Q(verdict="abuse") | Q(category="none"),
                name="decision_category_only_with_abuse",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.expert} on case {self.case_id}: {self.verdict}"
