"""AuditEvent leaves for the audit app (state only, the table stays); WorkingCopy arrives from
the former `operations` app with its table `operations_workingcopy` and its rows."""

import django.db.models.deletion
import reports.models
from django.conf import settings
from django.db import migrations, models

APP_LABEL = 'reports'

def _adopt_or_create(*names):
    """Keep the tables of the former `operations` app, rows and all, where they exist (the
    models kept their table names); create them on a new database."""

    def forward(apps, schema_editor):
        existing = set(schema_editor.connection.introspection.table_names())
        for name in names:
            model = apps.get_model(APP_LABEL, name)
            if model._meta.db_table not in existing:
                schema_editor.create_model(model)

    # Going back leaves the tables (and their rows) where they are, as the old app had them.
    return migrations.RunPython(forward, migrations.RunPython.noop)


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0001_auditevent_moved_from_reports'),
        ('detection', '0002_retentionrun_from_operations'),
        ('reports', '0002_audit_events_append_only'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='WorkingCopy',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('file', models.FileField(max_length=300, upload_to=reports.models.working_copy_upload_path)),
                        ('sha256', models.CharField(max_length=64)),
                        ('size', models.PositiveBigIntegerField()),
                        ('source_kind', models.CharField(max_length=10)),
                        ('source_sha256', models.CharField(max_length=64)),
                        ('blur', models.BooleanField()),
                        ('parameters', models.JSONField(default=dict)),
                        ('parameters_key', models.CharField(max_length=64)),
                        ('tool', models.CharField(max_length=200)),
                        ('tool_version', models.CharField(max_length=200)),
                        ('frames', models.PositiveIntegerField(default=0)),
                        ('faces_blurred', models.PositiveIntegerField(default=0)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('segment', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='working_copies', to='detection.segment')),
                    ],
                    options={
                        'verbose_name_plural': 'working copies',
                        'db_table': 'operations_workingcopy',
                        'ordering': ['segment', '-created_at'],
                    },
                ),
                migrations.DeleteModel(
                    name='AuditEvent',
                ),
                migrations.AddConstraint(
                    model_name='workingcopy',
                    constraint=models.UniqueConstraint(fields=('segment', 'parameters_key'), name='one_working_copy_per_parameters'),
                ),
            ],
        ),
        _adopt_or_create('WorkingCopy'),
    ]
