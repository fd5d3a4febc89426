"""Webhooks, case notifications and deliveries arrive from the former `operations` app with
their tables and their rows."""

import alerts.models
import django.core.validators
import django.db.models.deletion
from django.db import migrations, models

APP_LABEL = 'alerts'

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

    initial = True

    dependencies = [
        ('cameras', '0002_camera_analysis_fps_matches_model'),
        ('detection', '0002_retentionrun_from_operations'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='CaseNotification',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('band', models.CharField(choices=[('violent', 'Violent'), ('uncertain', 'Uncertain')], max_length=10)),
                        ('suppressed', models.BooleanField(default=False)),
                        ('payload', models.JSONField(default=dict)),
                        ('mqtt_status', models.CharField(choices=[('off', 'MQTT not configured'), ('pending', 'Pending'), ('published', 'Published'), ('failed', 'Failed')], default='off', max_length=10)),
                        ('mqtt_attempts', models.PositiveSmallIntegerField(default=0)),
                        ('created_at', models.DateTimeField()),
                        ('camera', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='cameras.camera')),
                        ('case', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to='detection.case')),
                    ],
                    options={
                        'db_table': 'operations_casenotification',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.CreateModel(
                    name='WebhookEndpoint',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100)),
                        ('url', models.URLField(max_length=500, validators=[django.core.validators.URLValidator(schemes=['http', 'https'])])),
                        ('secret', models.CharField(default=alerts.models.new_webhook_secret, max_length=128)),
                        ('notify_violent', models.BooleanField(default=True)),
                        ('notify_uncertain', models.BooleanField(default=True)),
                        ('enabled', models.BooleanField(default=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('site', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='webhook_endpoints', to='cameras.site')),
                    ],
                    options={
                        'db_table': 'operations_webhookendpoint',
                        'ordering': ['site__name', 'name'],
                    },
                ),
                migrations.CreateModel(
                    name='WebhookDelivery',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('succeeded', 'Delivered'), ('failed', 'Gave up')], default='pending', max_length=10)),
                        ('attempts', models.PositiveSmallIntegerField(default=0)),
                        ('response_code', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('error', models.CharField(blank=True, max_length=500)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('last_attempt_at', models.DateTimeField(blank=True, null=True)),
                        ('delivered_at', models.DateTimeField(blank=True, null=True)),
                        ('notification', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='alerts.casenotification')),
                        ('endpoint', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='alerts.webhookendpoint')),
                    ],
                    options={
                        'verbose_name_plural': 'webhook deliveries',
                        'db_table': 'operations_webhookdelivery',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.AddIndex(
                    model_name='casenotification',
                    index=models.Index(fields=['camera', 'band', '-created_at'], name='notification_cooldown_idx'),
                ),
                migrations.AddConstraint(
                    model_name='casenotification',
                    constraint=models.UniqueConstraint(fields=('case', 'band'), name='one_notification_per_band'),
                ),
                migrations.AddConstraint(
                    model_name='casenotification',
                    constraint=models.CheckConstraint(condition=models.Q(('band__in', ['violent', 'uncertain'])), name='notification_band_not_safe'),
                ),
                migrations.AddConstraint(
                    model_name='webhookendpoint',
                    constraint=models.UniqueConstraint(fields=('site', 'name'), name='webhook_unique_name_per_site'),
                ),
                migrations.AddConstraint(
                    model_name='webhookendpoint',
                    constraint=models.CheckConstraint(condition=models.Q(('secret', ''), _negated=True), name='webhook_secret_present'),
                ),
                migrations.AddConstraint(
                    model_name='webhookendpoint',
                    constraint=models.CheckConstraint(condition=models.Q(('url__startswith', 'http://'), ('url__startswith', 'https://'), _connector='OR'), name='webhook_url_http'),
                ),
                migrations.AddConstraint(
                    model_name='webhookdelivery',
                    constraint=models.UniqueConstraint(fields=('endpoint', 'notification'), name='one_delivery_per_endpoint'),
                ),
            ],
        ),
        _adopt_or_create('WebhookEndpoint', 'CaseNotification', 'WebhookDelivery'),
    ]
