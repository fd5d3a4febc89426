from __future__ import annotations

import zoneinfo
from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from cameras.jurisdictions import (
    DEFAULT_JURISDICTION,
    KOREA,
    Jurisdiction,
    jurisdiction_choices,
    jurisdiction_of,
    retention_refusal,
)
from cameras.rules import camera_setting_errors


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value})


class PoliceStation(models.Model):
    name = models.CharField(max_length=200, unique=True)
    region = models.CharField(max_length=100, db_index=True)
    phone = models.CharField(max_length=40)
    address = models.CharField(max_length=300)
    liaisons = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="liaison_stations", blank=True
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Site(models.Model):
    """A childcare centre."""

    name = models.CharField(max_length=200)
    address = models.CharField(max_length=300)
    phone = models.CharField(max_length=40)
    director = models.CharField(max_length=200)
    region = models.CharField(max_length=100, db_index=True)
    police_station = models.ForeignKey(
        PoliceStation, on_delete=models.PROTECT, related_name="sites"
    )
    timezone = models.CharField(max_length=64, default="Asia/Seoul", validators=[validate_timezone])
    # The law the centre's CCTV answers to (cameras/jurisdictions.py): it sets the minimum
    # retention and the viewing-request deadlines.
    jurisdiction = models.CharField(
        max_length=8, choices=jurisdiction_choices(), default=DEFAULT_JURISDICTION
    )
    # Safe footage older than this is erased; footage of cases, viewing requests and legal
    # holds is kept. Never below the jurisdiction's minimum (checked in clean()).
    retention_hours = models.PositiveIntegerField(default=KOREA.min_retention_hours)
    # Set when the storage quota and the legal minimum collide: new footage of the site is
    # still recorded, but not analysed, rather than erase footage the law protects.
    analysis_paused_at = models.DateTimeField(null=True, blank=True)
    analysis_paused_reason = models.CharField(max_length=500, blank=True)
    admins = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="administered_sites", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["name", "region"], name="site_unique_name_in_region"),
            models.CheckConstraint(
                condition=Q(retention_hours__gte=1), name="site_retention_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def law(self) -> Jurisdiction:
        return jurisdiction_of(self.jurisdiction)

    def clean(self) -> None:
        refusal = retention_refusal(code=self.jurisdiction, retention_hours=self.retention_hours)
        if refusal is not None:
            raise ValidationError({"retention_hours": refusal})


class Camera(models.Model):
    class Status(models.TextChoices):
        ONLINE = "online", _("Online")
        OFFLINE = "offline", _("Offline")
        ERROR = "error", _("Error")

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="cameras")
    name = models.CharField(max_length=120)
    # rtsp://, http(s)://, file path or /dev/video*; edge devices that push clips leave it blank.
    source_uri = models.CharField(max_length=1000, blank=True)
    # A lower-resolution stream of the same camera (a "detect" sub-stream), decoded for analysis
    # only: footage is always recorded, unaltered, from source_uri. Blank: analyse source_uri.
    analysis_uri = models.CharField(max_length=1000, blank=True)
    enabled = models.BooleanField(default=True)
    # The shipped model was trained on frames at 10 fps (its card's recommended_fps).
    analysis_fps = models.FloatField(default=10.0)
    window_seconds = models.FloatField(default=2.0)
    window_overlap_seconds = models.FloatField(default=0.0)
    # Blank thresholds mean "use the active model version's".
    low_threshold = models.FloatField(null=True, blank=True)
    high_threshold = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OFFLINE)
    status_detail = models.CharField(max_length=500, blank=True)
    last_frame_at = models.DateTimeField(null=True, blank=True)
    measured_fps = models.FloatField(null=True, blank=True)
    # Only a SHA-256 of the edge upload token is stored; the token is shown once when issued.
    upload_token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["site__name", "name"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["site", "name"], name="camera_unique_name_per_site"),
            models.CheckConstraint(
                condition=Q(analysis_fps__gt=0) & Q(analysis_fps__lte=60),
                name="camera_analysis_fps_range",
            ),
            models.CheckConstraint(
                condition=Q(window_seconds__gte=0.5) & Q(window_seconds__lte=30),
                name="camera_window_seconds_range",
            ),
            models.CheckConstraint(
                condition=Q(window_overlap_seconds__gte=0)
                & Q(window_overlap_seconds__lt=F("window_seconds")),
                name="camera_overlap_below_window",
            ),
            models.CheckConstraint(
                condition=Q(low_threshold__isnull=True)
                | (Q(low_threshold__gte=0) & Q(low_threshold__lte=1)),
                name="camera_low_threshold_range",
            ),
            models.CheckConstraint(
                condition=Q(high_threshold__isnull=True)
                | (Q(high_threshold__gte=0) & Q(high_threshold__lte=1)),
                name="camera_high_threshold_range",
            ),
            models.CheckConstraint(
                condition=Q(low_threshold__isnull=True)
                | Q(high_threshold__isnull=True)
                | Q(low_threshold__lt=F("high_threshold")),
                name="camera_low_below_high",
            ),
        ]
        indexes: ClassVar = [
            models.Index(fields=["enabled"], name="camera_enabled_idx", condition=Q(enabled=True)),
        ]

    def __str__(self) -> str:
        return f"{self.site.name} / {self.name}"

    def clean(self) -> None:
        errors = camera_setting_errors(
            low=self.low_threshold,
            high=self.high_threshold,
            window=self.window_seconds,
            overlap=self.window_overlap_seconds,
            source=self.source_uri,
            analysis=self.analysis_uri,
        )
        if errors:
            raise ValidationError(dict(errors))
