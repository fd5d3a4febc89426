"""The one mapping from a score to a band: violent, uncertain or safe."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Band(models.TextChoices):
    VIOLENT = "violent", _("Violent")
    UNCERTAIN = "uncertain", _("Uncertain")
    SAFE = "safe", _("Safe")


def band_for(score: float, *, low: float, high: float) -> Band:
    """`violent` at or above `high`, `uncertain` from `low` up to it, `safe` below `low`."""
    if score >= high:
        return Band.VIOLENT
    if score >= low:
        return Band.UNCERTAIN
    return Band.SAFE
