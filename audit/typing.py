"""Who acts, as the audit trail records it."""

from __future__ import annotations

from typing import TypeAlias

from django.contrib.auth.models import AnonymousUser, User

# Whoever acts: a signed-in user, an anonymous request (audited as denied), or None for the
# system itself (ingestion, triage, retention).
Actor: TypeAlias = User | AnonymousUser | None
