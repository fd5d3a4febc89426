"""Invariants the database itself enforces, whatever code writes the rows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from cameras.models import Camera
from detection.models import Case, Detection, ModelVersion
from tests import factories

pytestmark = pytest.mark.django_db


def test_camera_low_threshold_must_be_below_high():
    camera = factories.CameraFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Camera.objects.filter(pk=camera.pk).update(low_threshold=0.9, high_threshold=0.5)


def test_camera_clean_names_the_threshold_field():
    camera = factories.CameraFactory.build(
        site=factories.SiteFactory(), low_threshold=0.8, high_threshold=0.2
    )
    with pytest.raises(ValidationError) as excinfo:
        camera.full_clean()
    assert "low_threshold" in excinfo.value.message_dict


def test_camera_overlap_must_be_shorter_than_window():
    camera = factories.CameraFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Camera.objects.filter(pk=camera.pk).update(window_seconds=2, window_overlap_seconds=2)


def test_site_timezone_is_validated():
    site = factories.SiteFactory.build(
        police_station=factories.PoliceStationFactory(), timezone="Mars/Olympus"
    )
    with pytest.raises(ValidationError) as excinfo:
        site.full_clean()
    assert "timezone" in excinfo.value.message_dict


def test_only_one_model_version_is_active():
    factories.ModelVersionFactory(is_active=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.ModelVersionFactory(is_active=True)


def test_one_detection_per_segment_and_model_version():
    detection = factories.DetectionFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Detection.objects.create(
            segment=detection.segment,
            model_version=detection.model_version,
            score=0.1,
            band="safe",
            low_threshold=0.3,
            high_threshold=0.8,
        )


def test_detection_score_is_a_probability():
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.DetectionFactory(score=1.5)


def test_segment_must_end_after_it_starts():
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.SegmentFactory(started_at=start, ended_at=start)


def test_a_case_is_never_safe():
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.CaseFactory(band="safe")


def test_model_version_thresholds_are_ordered():
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.create(
            name="bad", artifact_path="x", low_threshold=0.9, high_threshold=0.1
        )


def test_one_police_report_per_case(world):
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.PoliceReportFactory(case=world.violent_case_a, station=world.station_a)


def test_case_statuses_include_the_whole_machine():
    assert set(Case.TRANSITIONS) == set(Case.Status.values)
