"""Demo data: police stations, two centres, cameras and one user of every role.

Idempotent: running it again updates the same rows and resets the demo passwords.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from cameras.models import Camera, PoliceStation, Site
from detection.model_versions import model_version_register
from detection.models import ModelVersion
from reviews.models import ExpertProfile

DEMO_PASSWORD = "abusewatch-demo"  # noqa: S105 - printed on purpose; refused when DEBUG is off
# Ordered violent / calm / uncertain / calm (tests/fixtures/demo-playlist/README.md): every
# journey can be walked within five minutes of `make run` (issue #15).
DEMO_CLIPS = settings.BASE_DIR / "tests" / "fixtures" / "demo-playlist"

STATIONS = [
    {
        "name": "Gangnam Police Station",
        "region": "Seoul",
        "phone": "+82-2-555-0112",
        "address": "11 Teheran-ro 114-gil, Gangnam-gu, Seoul",
    },
    {
        "name": "Haeundae Police Station",
        "region": "Busan",
        "phone": "+82-51-555-0112",
        "address": "25 Haeundaehaebyeon-ro, Haeundae-gu, Busan",
    },
]
SITES = [
    {
        "name": "Sunflower Daycare",
        "region": "Seoul",
        "station": "Gangnam Police Station",
        "address": "7 Yeoksam-ro, Gangnam-gu, Seoul",
        "phone": "+82-2-555-0100",
        "director": "Kim Ji-woo",
        "admin": "admin-sunflower",
    },
    {
        "name": "Maple Kids Centre",
        "region": "Busan",
        "station": "Haeundae Police Station",
        "address": "3 Centum-ro, Haeundae-gu, Busan",
        "phone": "+82-51-555-0100",
        "director": "Park Min-seo",
        "admin": "admin-maple",
    },
]


class Command(BaseCommand):
    help = "Create demo stations, centres, cameras and a user of every role (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-demo-camera",
            action="store_true",
            help="Do not point a camera at the replayed demo clips.",
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo creates accounts with a known password: run it with DEBUG=1 only."
            )
        user_model = get_user_model()

        def user(username: str, **extra: Any) -> Any:
            account, _created = user_model.objects.get_or_create(username=username)
            for field, value in extra.items():
                setattr(account, field, value)
            account.set_password(DEMO_PASSWORD)
            account.save()
            return account

        operator = user("operator", is_staff=True, is_superuser=True, email="ops@example.org")
        stations = {}
        for spec in STATIONS:
            station, _ = PoliceStation.objects.update_or_create(
                name=spec["name"], defaults={k: v for k, v in spec.items() if k != "name"}
            )
            stations[station.name] = station
        liaisons = {
            "police-gangnam": stations["Gangnam Police Station"],
            "police-haeundae": stations["Haeundae Police Station"],
        }
        for username, station in liaisons.items():
            station.liaisons.add(user(username))

        for index, spec in enumerate(SITES):
            site, _ = Site.objects.update_or_create(
                name=spec["name"],
                region=spec["region"],
                defaults={
                    "address": spec["address"],
                    "phone": spec["phone"],
                    "director": spec["director"],
                    "police_station": stations[spec["station"]],
                    "timezone": "Asia/Seoul",
                },
            )
            site.admins.add(user(spec["admin"]))
            demo_source = "" if options["no_demo_camera"] or index else str(DEMO_CLIPS)
            Camera.objects.update_or_create(
                site=site,
                name="Playroom",
                # One stream: the demo clips are small already (a bench camera adds a detect
                # stream, cameras.ingest.analysis_stream); seeding again resets the camera.
                defaults={
                    "source_uri": demo_source,
                    "analysis_uri": "",
                    "enabled": bool(demo_source),
                },
            )
            Camera.objects.get_or_create(
                site=site, name="Nap room", defaults={"source_uri": "", "enabled": False}
            )

        expert = user("expert")
        ExpertProfile.objects.update_or_create(
            user=expert, defaults={"regions": [], "organisation": "Child Protection Agency"}
        )
        second_expert = user("expert-seoul")
        ExpertProfile.objects.update_or_create(
            user=second_expert,
            defaults={"regions": ["Seoul"], "organisation": "Seoul Child Protection"},
        )
        # Every region needs two experts: a dismissal only stands when a second one agrees.
        busan_expert = user("expert-busan")
        ExpertProfile.objects.update_or_create(
            user=busan_expert,
            defaults={"regions": ["Busan"], "organisation": "Busan Child Protection"},
        )
        user("outsider")

        self._register_default_model(operator)
        self.stdout.write(self.style.SUCCESS("Demo data ready. Log in with any of these:"))
        for username, role in [
            ("operator", "operator (superuser, Django admin)"),
            ("admin-sunflower", "centre admin of Sunflower Daycare (Seoul)"),
            ("admin-maple", "centre admin of Maple Kids Centre (Busan)"),
            ("expert", "child-protection expert, all regions"),
            ("expert-seoul", "child-protection expert, Seoul only"),
            ("expert-busan", "child-protection expert, Busan only"),
            ("police-gangnam", "police liaison, Gangnam station"),
            ("police-haeundae", "police liaison, Haeundae station"),
            ("outsider", "no role: sees nothing"),
        ]:
            self.stdout.write(f"  {username:<16} / {DEMO_PASSWORD}   {role}")

    def _register_default_model(self, operator: Any) -> None:
        card = settings.DEFAULT_MODEL_DIR / "model_card.json"
        if not card.exists():
            self.stdout.write(self.style.WARNING(f"No default model at {card}; detection is off."))
            return
        version = model_version_register(
            artifact_dir=settings.DEFAULT_MODEL_DIR,
            activate=not ModelVersion.objects.filter(is_active=True).exists(),
            actor=operator,
        )
        self.stdout.write(f"Model version {version.name} registered.")
