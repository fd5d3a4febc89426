"""RetentionRun arrives from the former `operations` app with its table and its rows."""

from django.db import migrations, models

APP_LABEL = 'detection'

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
        ('detection', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='RetentionRun',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('trigger', models.CharField(choices=[('schedule', 'Periodic task'), ('command', 'manage.py retention')], max_length=10)),
                        ('dry_run', models.BooleanField(default=False)),
                        ('started_at', models.DateTimeField()),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('purged_segments', models.PositiveIntegerField(default=0)),
                        ('freed_bytes', models.PositiveBigIntegerField(default=0)),
                        ('storage_bytes', models.PositiveBigIntegerField(default=0)),
                        ('quota_bytes', models.PositiveBigIntegerField(default=0)),
                        ('quota_exceeded', models.BooleanField(default=False)),
                    ],
                    options={
                        'db_table': 'operations_retentionrun',
                        'ordering': ['-started_at'],
                    },
                ),
            ],
        ),
        _adopt_or_create('RetentionRun'),
    ]
