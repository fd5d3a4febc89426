from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

from audit.models import AuditEvent
from cameras import services as camera_services
from detection.model_versions import model_version_register
from detection.models import Case, ModelVersion
from detection.services import IllegalTransition, case_transition
from reports.models import PoliceReport
from reports.services import police_report_send, police_report_set_status
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("start", "to"),
    [
        ("open", "under_review"),
        ("open", "reported"),
        ("under_review", "escalated"),
        ("under_review", "dismissed"),
        ("escalated", "reported"),
        ("reported", "closed"),
        ("dismissed", "closed"),
    ],
)
def test_legal_case_transitions_are_made_and_audited(start, to):
    case = factories.CaseFactory(status=start)
    case_transition(case=case, to=to, actor=None)
    case.refresh_from_db()
    assert case.status == to
    event = AuditEvent.objects.get(action="case.transition", object_id=str(case.pk))
    assert event.details == {"from": start, "to": to}


@pytest.mark.parametrize(
    ("start", "to"),
    [
        ("open", "closed"),
        ("open", "escalated"),
        ("dismissed", "reported"),
        ("closed", "open"),
        ("reported", "open"),
        ("escalated", "dismissed"),
    ],
)
def test_illegal_case_transitions_are_refused_and_change_nothing(start, to):
    case = factories.CaseFactory(status=start)
    with pytest.raises(IllegalTransition):
        case_transition(case=case, to=to, actor=None)
    case.refresh_from_db()
    assert case.status == start
    assert not AuditEvent.objects.filter(action="case.transition").exists()


def test_police_report_goes_to_the_sites_station_once(world):
    case = factories.CaseFactory(camera=world.camera_b, band="violent", peak_score=0.99)
    first = police_report_send(case=case, reason=PoliceReport.Reason.VIOLENT)
    second = police_report_send(case=case, reason=PoliceReport.Reason.VIOLENT)
    assert first.pk == second.pk
    assert first.station == world.station_b


def test_police_report_status_follows_its_machine(world):
    report = police_report_set_status(report=world.report_a, to="acknowledged", actor=world.lee)
    assert report.acknowledged_at is not None and report.handled_by == world.lee
    with pytest.raises(ValidationError):
        police_report_set_status(report=report, to="acknowledged", actor=world.lee)


def test_upload_token_is_shown_once_and_only_its_hash_is_stored(world):
    token = camera_services.camera_issue_upload_token(camera=world.camera_a, actor=world.alice)
    world.camera_a.refresh_from_db()
    assert token not in (world.camera_a.upload_token_hash or "")
    assert camera_services.camera_for_upload_token(token) == world.camera_a
    assert camera_services.camera_for_upload_token("wrong-token") is None
    assert camera_services.camera_for_upload_token("") is None
    newer = camera_services.camera_issue_upload_token(camera=world.camera_a, actor=world.alice)
    assert camera_services.camera_for_upload_token(token) is None
    assert camera_services.camera_for_upload_token(newer) == world.camera_a


def test_camera_with_footage_is_disabled_not_deleted(world):
    factories.SegmentFactory(camera=world.camera_a)
    camera_services.camera_delete(camera=world.camera_a, actor=world.alice)
    world.camera_a.refresh_from_db()
    assert world.camera_a.enabled is False


def test_model_version_register_reads_the_card_and_is_idempotent(tmp_path):
    card = {
        "version": "v-test",
        "thresholds": {"low": 0.4, "high": 0.85},
        "input_spec": {"frames": 12, "height": 64, "width": 64, "fps": 10.0, "window_seconds": 1.6},
        "cross_validation": {
            "scheme": "grouped 5-fold",
            "folds": [{"fold": 1, "roc_auc": 0.8, "n_test": 40}],
            "mean_sd_at_0.5": {},
        },
    }
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    first = model_version_register(artifact_dir=tmp_path, activate=True)
    second = model_version_register(artifact_dir=tmp_path, activate=True)
    assert first.pk == second.pk
    assert (first.low_threshold, first.high_threshold) == (0.4, 0.85)
    assert first.metrics == {"scheme": "grouped 5-fold", "mean_sd_at_0.5": {}}
    assert ModelVersion.objects.get(is_active=True) == first


def test_model_version_register_refuses_a_broken_card(tmp_path):
    (tmp_path / "model_card.json").write_text("{not json")
    with pytest.raises(ValidationError, match="model card"):
        model_version_register(artifact_dir=tmp_path)
    assert not ModelVersion.objects.exists()


def test_case_status_machine_has_no_way_back_from_closed():
    assert Case.TRANSITIONS[Case.Status.CLOSED] == frozenset()
