"""Freeze the span of every case already reported to the police (issue #15).

From now on reporting a case ends its span at once; cases reported before kept growing. Their
span is frozen as it stands, dated when the report was sent.
"""

from __future__ import annotations

from django.db import migrations


def freeze(apps, schema_editor) -> None:  # type: ignore[no-untyped-def]
    case_model = apps.get_model("detection", "Case")
    report_model = apps.get_model("reports", "PoliceReport")
    for case_id, sent_at in report_model.objects.values_list("case_id", "sent_at").iterator():
        case_model.objects.filter(pk=case_id).update(
            span_end_reason="reported", span_ended_at=sent_at
        )


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0004_police_report_reason_viewing"),
        ("detection", "0007_end_spans_of_existing_cases"),
    ]

    operations = [migrations.RunPython(freeze, migrations.RunPython.noop)]
