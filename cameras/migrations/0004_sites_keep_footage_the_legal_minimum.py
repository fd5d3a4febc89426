"""Existing sites move to the legal default: every site whose retention is shorter than its
jurisdiction's minimum (the old default was 72 hours) now keeps footage 60 days.

Reversible: the reverse step sets sites that hold exactly the legal minimum back to the old
default of 72 hours (a site whose admin has since chosen a longer retention is left alone).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

OLD_DEFAULT_HOURS = 72
# Frozen here: a migration must not follow later edits of cameras/jurisdictions.py.
MIN_RETENTION_HOURS = {"KR": 60 * 24}


def raise_to_legal_minimum(apps: Any, schema_editor: Any) -> None:
    Site = apps.get_model("cameras", "Site")
    for code, hours in MIN_RETENTION_HOURS.items():
        Site.objects.filter(jurisdiction=code, retention_hours__lt=hours).update(
            retention_hours=hours
        )


def back_to_old_default(apps: Any, schema_editor: Any) -> None:
    Site = apps.get_model("cameras", "Site")
    for hours in MIN_RETENTION_HOURS.values():
        Site.objects.filter(retention_hours=hours).update(retention_hours=OLD_DEFAULT_HOURS)


class Migration(migrations.Migration):
    dependencies = [("cameras", "0003_site_jurisdiction_and_legal_retention")]

    operations = [migrations.RunPython(raise_to_legal_minimum, back_to_old_default)]
