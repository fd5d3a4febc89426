from __future__ import annotations

import threading

import pytest
from django.db import DatabaseError, connection, transaction

from audit.db import install_append_only_triggers
from audit.models import AuditEvent
from audit.services import GENESIS_HASH, audit_record, audit_verify_chain
from tests import factories

pytestmark = pytest.mark.django_db


def test_events_form_a_chain_from_genesis():
    first = audit_record(actor=None, action="one")
    second = audit_record(actor=None, action="two", details={"n": 2})
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert audit_verify_chain() is None


@pytest.fixture
def append_only(db):
    # Installed inside the test's transaction, so rolled back with it.
    install_append_only_triggers(connection)


def test_database_refuses_to_change_an_event(append_only):
    event = audit_record(actor=None, action="kept")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="rewritten")


def test_database_refuses_to_delete_an_event(append_only):
    event = audit_record(actor=None, action="kept")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()


def test_a_forged_row_breaks_the_chain():
    audit_record(actor=None, action="genuine")
    head = AuditEvent.objects.latest("id")
    AuditEvent.objects.create(
        actor_label="mallory",
        action="forged",
        occurred_at=head.occurred_at,
        prev_hash=head.hash,
        hash="f" * 64,
    )
    broken = audit_verify_chain()
    assert broken is not None and "hash" in broken.reason


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain():
    WRITERS, EVENTS_PER_WRITER = 8, 12

    def append_many(worker: int) -> None:
        try:
            for n in range(EVENTS_PER_WRITER):
                audit_record(actor=None, action=f"worker{worker}.{n}")
        finally:
            connection.close()

    threads = [threading.Thread(target=append_many, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Every append must land: a writer that gives up loses an audit event.
    assert AuditEvent.objects.count() == WRITERS * EVENTS_PER_WRITER
    assert audit_verify_chain() is None


def test_actor_and_target_are_recorded(world):
    event = audit_record(
        actor=world.alice, action="camera.view", target=world.camera_a, ip_address="10.0.0.7"
    )
    assert (event.actor_label, event.object_type, event.object_id) == (
        "alice",
        "cameras.Camera",
        str(world.camera_a.pk),
    )
    assert event.ip_address == "10.0.0.7"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TRUNCATE is PostgreSQL's")
def test_truncate_is_refused_on_postgresql(append_only):
    audit_record(actor=None, action="kept")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE reports_auditevent")


def test_factories_do_not_write_audit_events():
    factories.CameraFactory()
    assert not AuditEvent.objects.exists()


def test_an_ipv6_address_in_its_long_form_keeps_the_chain_whole():
    # The column keeps IPv6 in its short form; the hash must cover what is stored.
    event = audit_record(actor=None, action="from.ipv6", ip_address="2001:DB8:0:0::1")
    assert AuditEvent.objects.get(pk=event.pk).ip_address == "2001:db8::1"
    assert audit_verify_chain() is None
