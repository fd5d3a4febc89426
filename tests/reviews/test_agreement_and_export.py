from __future__ import annotations

import csv

import pytest
from django.core.management import call_command
from django.urls import reverse

from detection.models import Case
from ml.datasets import scan_dataset
from reviews.agreement import agreement_of, cohen_kappa
from reviews.models import ReviewDecision
from reviews.selectors import review_agreement
from tests.conftest import World
from tests.support.footage import client_as


def test_cohen_kappa_matches_the_textbook_example() -> None:
    # 50 items: both yes 20, yes/no 5, no/yes 10, both no 15 -> p_o = 0.7, p_e = 0.5, kappa 0.4.
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)


def test_cohen_kappa_edges() -> None:
    assert cohen_kappa([]) is None
    assert cohen_kappa([("a", "a"), ("b", "b")]) == pytest.approx(1.0)
    assert cohen_kappa([("a", "b"), ("b", "a")]) == pytest.approx(-1.0)
    # Both always said the same single label: chance agreement is total, kappa undefined.
    assert cohen_kappa([("a", "a"), ("a", "a")]) is None
    three = agreement_of([["abuse", "not_abuse", "abuse"]])
    assert three.pairs == 3 and three.observed == pytest.approx(1 / 3)


def _decide(case: Case, expert, verdict: str, span: tuple[float, float] | None = None) -> None:
    ReviewDecision.objects.create(
        case=case,
        expert=expert,
        verdict=verdict,
        outcome="escalate" if verdict == "abuse" else "dismiss",
        span_start_seconds=span[0] if span else None,
        span_end_seconds=span[1] if span else None,
    )


@pytest.mark.django_db
def test_agreement_page_for_operators_only(footage: World) -> None:
    w = footage
    _decide(w.uncertain_case_a, w.erin, "abuse")
    _decide(w.uncertain_case_a, w.sam, "abuse")
    _decide(w.uncertain_case_b, w.erin, "not_abuse")
    _decide(w.uncertain_case_b, w.olga, "abuse")
    agreement = review_agreement()
    assert agreement.pairs == 2
    # pairs (abuse, abuse), (not_abuse, abuse): p_o = .5; p_e = .5*1 + .5*0 = .5 -> kappa 0.
    assert agreement.kappa == pytest.approx(0.0)
    page = client_as(w.olga).get(reverse("review-agreement"))
    assert page.status_code == 200 and 'id="pairs">2<' in page.text
    # Two pairs: the kappa is shown with a caveat (issue #15: it read as settled).
    assert 'id="kappa-caveat"' in page.text and "only 2 pairs" in page.text
    korean = client_as(w.olga).get(reverse("review-agreement"), HTTP_ACCEPT_LANGUAGE="ko")
    assert "2쌍" in korean.text
    for user in (w.erin, w.alice, w.lee, w.charlie):
        assert client_as(user).get(reverse("review-agreement")).status_code == 403


@pytest.mark.django_db
def test_kappa_caveat_for_one_pair_and_none_once_there_are_enough(footage: World) -> None:
    w = footage
    _decide(w.uncertain_case_a, w.erin, "abuse")
    page = client_as(w.olga).get(reverse("review-agreement"))
    assert 'id="kappa-caveat"' not in page.text  # no pair yet: nothing to caveat, kappa "—"
    _decide(w.uncertain_case_a, w.sam, "abuse")
    page = client_as(w.olga).get(reverse("review-agreement"))
    assert "a single pair" in page.text
    many = agreement_of([["abuse", "not_abuse"], ["abuse", "abuse"]] * 10)
    assert many.pairs == 20 and not many.too_few_pairs
    assert agreement_of([["abuse", "abuse"]] * 19).too_few_pairs


@pytest.mark.django_db
def test_export_labelled_clips_is_a_dataset_ml_train_reads(footage: World, tmp_path) -> None:
    w = footage
    abuse_case, safe_case = w.uncertain_case_a, w.violent_case_a
    _decide(abuse_case, w.erin, "abuse")
    Case.objects.filter(pk=abuse_case.pk).update(status=Case.Status.REPORTED)
    _decide(safe_case, w.erin, "not_abuse")
    _decide(safe_case, w.sam, "not_abuse")
    # An open case and a tied case are left out.
    _decide(w.uncertain_case_b, w.erin, "abuse")
    out = tmp_path / "dataset"
    call_command("export_labelled_clips", str(out))
    with (out / "labels.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {r["label"] for r in rows} == {"abuse", "not_abuse"}
    assert len(rows) == 4
    assert {r["source_group"] for r in rows} == {str(w.camera_a.pk)}
    for row in rows:
        exported = (out / row["clip"]).read_bytes()
        segment_id = int(row["clip"].split("segment")[1].split(".")[0])
        from detection.models import Segment

        assert exported == Segment.objects.get(pk=segment_id).original.read()
    scan = scan_dataset(out)
    assert scan.layout == "labels.csv"
    assert sorted(r.label for r in scan.records) == [0, 0, 1, 1]
    assert {r.group for r in scan.records} == {str(w.camera_a.pk)}


@pytest.mark.django_db
def test_export_keeps_only_the_windows_experts_marked_as_abuse(footage: World, tmp_path) -> None:
    w = footage
    case = w.uncertain_case_a
    segments = sorted(case.segments.all(), key=lambda s: s.started_at)
    # The case's footage: two windows, 0-2 s and 2-4 s; both experts saw the act in the second.
    assert [(s.ended_at - s.started_at).total_seconds() for s in segments] == [2.0, 2.0]
    _decide(case, w.erin, "abuse", span=(2.5, 3.5))
    _decide(case, w.sam, "abuse", span=(2.2, 3.0))
    Case.objects.filter(pk=case.pk).update(status=Case.Status.REPORTED)
    out = tmp_path / "dataset"
    call_command("export_labelled_clips", str(out))
    with (out / "labels.csv").open() as handle:
        clips = [row["clip"] for row in csv.DictReader(handle)]
    assert clips == [f"abuse/case{case.pk}_segment{segments[1].pk}.mp4"]
