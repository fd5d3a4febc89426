"""factory_boy factories for the domain model."""

from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth.models import User
from django.utils import timezone

from cameras.models import Camera, PoliceStation, Site
from detection.models import Band, Case, Detection, ModelVersion, Segment
from reports.models import PoliceReport
from reviews.models import ExpertProfile

BASE_TIME = dt.datetime(2026, 11, 2, 1, 0, tzinfo=dt.UTC)


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests")


class PoliceStationFactory(factory.django.DjangoModelFactory[PoliceStation]):
    class Meta:
        model = PoliceStation

    name = factory.Sequence(lambda n: f"Station {n}")
    region = "Seoul"
    phone = "+82-2-000-0000"
    address = "1 Test-ro"


class SiteFactory(factory.django.DjangoModelFactory[Site]):
    class Meta:
        model = Site

    name = factory.Sequence(lambda n: f"Daycare {n}")
    address = "2 Test-ro"
    phone = "+82-2-000-0001"
    director = "Director"
    region = "Seoul"
    police_station = factory.SubFactory(PoliceStationFactory)
    timezone = "Asia/Seoul"


class CameraFactory(factory.django.DjangoModelFactory[Camera]):
    class Meta:
        model = Camera

    site = factory.SubFactory(SiteFactory)
    name = factory.Sequence(lambda n: f"Camera {n}")
    source_uri = ""


class ModelVersionFactory(factory.django.DjangoModelFactory[ModelVersion]):
    class Meta:
        model = ModelVersion

    name = factory.Sequence(lambda n: f"model-{n}")
    artifact_path = "ml/artifacts/default"
    low_threshold = 0.3
    high_threshold = 0.8


class SegmentFactory(factory.django.DjangoModelFactory[Segment]):
    class Meta:
        model = Segment

    camera = factory.SubFactory(CameraFactory)
    started_at = factory.Sequence(lambda n: BASE_TIME + dt.timedelta(seconds=2 * n))
    ended_at = factory.LazyAttribute(lambda o: o.started_at + dt.timedelta(seconds=2))


class DetectionFactory(factory.django.DjangoModelFactory[Detection]):
    class Meta:
        model = Detection

    segment = factory.SubFactory(SegmentFactory)
    model_version = factory.SubFactory(ModelVersionFactory)
    score = 0.5
    band = Band.UNCERTAIN
    low_threshold = 0.3
    high_threshold = 0.8


class CaseFactory(factory.django.DjangoModelFactory[Case]):
    class Meta:
        model = Case

    camera = factory.SubFactory(CameraFactory)
    started_at = factory.LazyFunction(timezone.now)
    ended_at = factory.LazyAttribute(lambda o: o.started_at + dt.timedelta(seconds=4))
    peak_score = 0.6
    band = Band.UNCERTAIN


class PoliceReportFactory(factory.django.DjangoModelFactory[PoliceReport]):
    class Meta:
        model = PoliceReport

    case = factory.SubFactory(CaseFactory, band=Band.VIOLENT, peak_score=0.95, status="reported")
    station = factory.LazyAttribute(lambda o: o.case.camera.site.police_station)
    reason = PoliceReport.Reason.VIOLENT
    sent_at = factory.LazyFunction(timezone.now)


class ExpertProfileFactory(factory.django.DjangoModelFactory[ExpertProfile]):
    class Meta:
        model = ExpertProfile

    user = factory.SubFactory(UserFactory)
    regions: list[str] = []
