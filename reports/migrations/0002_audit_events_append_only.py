"""Make the audit trail append-only in the database itself, not only in the admin."""

from django.conf import settings
from django.db import migrations


def install(apps, schema_editor):
    from audit.db import install_append_only_triggers

    if getattr(settings, "AUDIT_EVENTS_APPEND_ONLY", True):
        install_append_only_triggers(schema_editor.connection)


def remove(apps, schema_editor):
    from audit.db import remove_append_only_triggers

    remove_append_only_triggers(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("reports", "0001_initial")]

    operations = [migrations.RunPython(install, remove)]
