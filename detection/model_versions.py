"""Model versions: read a model card, register and activate versions, the active one.

The model card is read in ONE place, `read_model_card`; everything else in the Django apps
reads it through this module (the lead may swap its body for `ml.model_card.ModelCard`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from audit.services import audit_record
from audit.typing import Actor
from detection.models import ModelVersion
from ml.preprocess import InputSpec


def read_model_card(artifact_dir: Path) -> dict[str, Any]:
    """The model card alone, without loading TensorFlow (the web process never needs it)."""
    card_path = Path(artifact_dir) / "model_card.json"
    try:
        card: dict[str, Any] = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{card_path} is not a readable model card: {exc}") from exc
    if "version" not in card or "thresholds" not in card:
        raise ValidationError(f"{card_path} lacks 'version' or 'thresholds'.")
    return card


@transaction.atomic
def model_version_register(
    *, artifact_dir: Path, activate: bool = False, actor: Actor = None
) -> ModelVersion:
    """Record a model artifact (reading its card) as a ModelVersion; idempotent by name."""
    card = read_model_card(artifact_dir)
    thresholds = card["thresholds"]
    version, created = ModelVersion.objects.get_or_create(
        name=str(card["version"]),
        defaults={
            "artifact_path": str(artifact_dir),
            "low_threshold": float(thresholds["low"]),
            "high_threshold": float(thresholds["high"]),
            # The cross-validation summary, without the per-fold and per-clip detail.
            "metrics": {
                key: value
                for key, value in card.get("cross_validation", {}).items()
                if key != "folds"
            },
            "card": card,
        },
    )
    if created:
        version.full_clean()
        audit_record(actor=actor, action="model_version.register", target=version)
    if activate and not version.is_active:
        model_version_activate(version=version, actor=actor)
    return version


@transaction.atomic
def model_version_activate(*, version: ModelVersion, actor: Actor) -> None:
    ModelVersion.objects.select_for_update().filter(is_active=True).update(is_active=False)
    ModelVersion.objects.filter(pk=version.pk).update(is_active=True)
    version.is_active = True
    audit_record(actor=actor, action="model_version.activate", target=version)


def model_version_active() -> ModelVersion:
    """The model that decides now; the shipped default is registered when there is none yet."""
    version = ModelVersion.objects.filter(is_active=True).first()
    if version is None:
        version = model_version_register(artifact_dir=settings.DEFAULT_MODEL_DIR, activate=True)
    return version


def model_frame_size() -> tuple[int, int]:
    """(height, width) of the active model's input, so readers resize frames only once."""
    version = ModelVersion.objects.filter(is_active=True).only("card").first()
    card: dict[str, Any] | None = version.card if version is not None else None
    if not card:
        try:
            card = read_model_card(settings.DEFAULT_MODEL_DIR)
        except Exception:
            card = {}
    spec = InputSpec.from_dict(card.get("input_spec", {}))
    return spec.height, spec.width
