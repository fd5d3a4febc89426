"""Model versions: read a model card, register and activate versions, the active one.

A card is read in ONE place, `model_card_from`, as the typed `ml.model_card.ModelCard` (schema 1:
one CNN, as old ModelVersion rows hold; schema 2: the cascade); everything else in the Django
apps reads it through this module.
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
from ml.input_spec import InputSpec
from ml.model_card import CARD_FILE, ModelCard, ModelCardError


def model_card_from(data: object, *, where: str) -> ModelCard:
    """THE one reading of a model card (from its file or as stored on a ModelVersion).

    A malformed card is a clear ValidationError naming `where`.
    """
    if not isinstance(data, dict):
        raise ValidationError(f"{where} is not a model card (a JSON object).")
    try:
        return ModelCard.from_dict(data)
    except (ModelCardError, KeyError, TypeError, ValueError) as exc:
        raise ValidationError(f"{where} is not a usable model card: {exc}") from exc


def card_metrics(card: ModelCard) -> dict[str, Any]:
    """The cross-validation summary a ModelVersion keeps, without per-fold and per-clip detail."""
    if card.cross_validation is None:
        return {}
    summary = card.cross_validation.to_dict()
    return {key: value for key, value in summary.items() if key not in ("folds", "out_of_fold")}


def read_model_card(artifact_dir: Path) -> ModelCard:
    """The model card alone, without loading TensorFlow (the web process never needs it)."""
    card_path = Path(artifact_dir) / CARD_FILE
    try:
        data = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{card_path} is not a readable model card: {exc}") from exc
    return model_card_from(data, where=str(card_path))


@transaction.atomic
def model_version_register(
    *, artifact_dir: Path, activate: bool = False, actor: Actor = None
) -> ModelVersion:
    """Record a model artifact (reading its card) as a ModelVersion; idempotent by name."""
    card = read_model_card(artifact_dir)
    version, created = ModelVersion.objects.get_or_create(
        name=card.version,
        defaults={
            "artifact_path": str(artifact_dir),
            "low_threshold": card.thresholds.low,
            "high_threshold": card.thresholds.high,
            "metrics": card_metrics(card),
            "card": card.to_dict(),
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


def model_frame_spec() -> InputSpec:
    """The active model's input (frame size, resize rule), so readers shrink frames once, by
    the rule the model was trained with."""
    version = ModelVersion.objects.filter(is_active=True).only("card").first()
    try:
        if version is not None and version.card:
            card = model_card_from(version.card, where=f"model version {version.pk}")
        else:
            card = read_model_card(settings.DEFAULT_MODEL_DIR)
    except ValidationError:
        # No readable card: the model's default input size.
        return InputSpec.from_dict({})
    return card.input_spec
