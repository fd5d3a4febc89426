from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class AuditEvent(models.Model):
    """An append-only, hash-chained record of who did what.

    Each row stores the hash of the row before it and its own hash over its content and that
    link, so editing, inserting or removing a row breaks the chain from there on. The database
    refuses UPDATE and DELETE (triggers added by migration), and the unique `prev_hash` stops
    two writers from extending the chain from the same row.

    The hashes are unkeyed: someone who can drop the triggers can cut the newest rows off, or
    edit a row and rehash everything after it, and the chain alone still looks whole. What
    catches that is outside the database: every evidence package pins the chain's newest event
    and its hash in its signed manifest, and `verify_evidence` checks that event is still there.
    """

    class Outcome(models.TextChoices):
        SUCCESS = "success", _("Success")
        DENIED = "denied", _("Denied")
        FAILED = "failed", _("Failed")

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    # The actor's username at the time, kept even if the account is later renamed or removed.
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=80, db_index=True)
    object_type = models.CharField(max_length=80, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    occurred_at = models.DateTimeField()
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, unique=True)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        # The table kept its name when the model moved here from reports: its rows, its hash
        # chain and its append-only triggers stayed where they were.
        db_table = "reports_auditevent"
        ordering = ["id"]
        indexes: ClassVar = [
            models.Index(fields=["object_type", "object_id"], name="audit_object_idx"),
        ]
        constraints: ClassVar = [
            models.CheckConstraint(condition=~Q(hash=""), name="audit_hash_present"),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action}"
