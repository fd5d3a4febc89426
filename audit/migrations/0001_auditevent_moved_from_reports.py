"""AuditEvent moves here from reports: state only. The table `reports_auditevent`, its rows,
their hash chain and the append-only triggers on it stay exactly as they were."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('reports', '0002_audit_events_append_only'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='AuditEvent',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('actor_label', models.CharField(max_length=150)),
                        ('action', models.CharField(db_index=True, max_length=80)),
                        ('object_type', models.CharField(blank=True, max_length=80)),
                        ('object_id', models.CharField(blank=True, max_length=64)),
                        ('occurred_at', models.DateTimeField()),
                        ('ip_address', models.GenericIPAddressField(blank=True, null=True)),
                        ('outcome', models.CharField(choices=[('success', 'Success'), ('denied', 'Denied'), ('failed', 'Failed')], default='success', max_length=10)),
                        ('details', models.JSONField(blank=True, default=dict)),
                        ('prev_hash', models.CharField(max_length=64, unique=True)),
                        ('hash', models.CharField(max_length=64, unique=True)),
                        ('actor', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'reports_auditevent',
                        'ordering': ['id'],
                        'indexes': [models.Index(fields=['object_type', 'object_id'], name='audit_object_idx')],
                        'constraints': [models.CheckConstraint(condition=models.Q(('hash', ''), _negated=True), name='audit_hash_present')],
                    },
                ),
            ],
        ),
    ]
