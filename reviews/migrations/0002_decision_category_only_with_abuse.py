"""A category only with an "abuse" verdict (issue #15).

The review form had no empty category: every "not abuse" or "unsure" review was stored with the
first category ("hitting") and shown to police and experts as such. Those rows are corrected to
"none" (the value the category always meant to have there) before the database starts refusing
them. The audit trail keeps what was submitted.
"""

from __future__ import annotations

from django.db import migrations, models


def clear_categories(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    decision_model = apps.get_model("reviews", "ReviewDecision")
    decision_model.objects.exclude(verdict="abuse").exclude(category="none").update(
        category="none"
    )


class Migration(migrations.Migration):
    dependencies = [("reviews", "0001_initial")]

    operations = [
        migrations.RunPython(clear_categories, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="reviewdecision",
            constraint=models.CheckConstraint(
                condition=models.Q(("verdict", "abuse"), ("category", "none"), _connector="OR"),
                name="decision_category_only_with_abuse",
            ),
        ),
    ]
