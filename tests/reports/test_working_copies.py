from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest
from django.test import Client

from audit.models import AuditEvent
from detection.models import Case, Segment
from detection.retention import segment_purge
from reports.models import WorkingCopy
from reports.redaction import WorkingCopyUnavailable, working_copies_for_case, working_copy_for
from tests.conftest import World
from tests.support.faces import face_clip_bytes, first_frame
from tests.support.storage import footage_segment

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

# Where scikit-image's own example finds the astronaut's face (row, column, side).
FACE = (slice(80, 150), slice(185, 255))
BACKGROUND = (slice(380, 500), slice(0, 120))


@pytest.fixture(scope="module")
def face_clip() -> bytes:
    return face_clip_bytes()


def difference(a: np.ndarray, b: np.ndarray, region) -> float:
    return float(np.abs(a[region] - b[region]).mean())


@pytest.fixture
def segment(world: World, face_clip: bytes) -> Segment:
    segment = footage_segment(world.camera_a, hours_old=1, original=face_clip)
    world.uncertain_case_a.segments.add(segment)
    world.violent_case_a.segments.add(segment)
    return segment


def test_faces_are_pixelated_in_the_copy_and_untouched_in_the_original(segment, face_clip):
    original = first_frame(face_clip)
    copy = working_copy_for(segment, blur=True)

    blurred = first_frame(Path(copy.file.path))
    assert copy.faces_blurred >= 1 and copy.frames == 8
    assert difference(original, blurred, FACE) > 15  # the face is gone
    assert difference(original, blurred, BACKGROUND) < 4  # the rest is a faithful re-encode
    # The original is byte for byte what it was.
    assert Path(segment.original.path).read_bytes() == face_clip
    assert hashlib.sha256(face_clip).hexdigest() == segment.original_sha256
    # The copy records how it was derived.
    assert copy.source_sha256 == segment.original_sha256 and copy.source_kind == "original"
    assert copy.sha256 == hashlib.sha256(Path(copy.file.path).read_bytes()).hexdigest()
    assert copy.parameters["blur"] is True
    assert copy.parameters["detector"]["name"] == "skimage.feature.Cascade"
    assert copy.parameters["encoder"]["codec"] == "libx264"
    assert "scikit-image" in copy.tool_version and "PyAV" in copy.tool_version
    with av.open(copy.file.path) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    # Cached: asked again, the same copy comes back.
    assert working_copy_for(segment, blur=True).pk == copy.pk
    assert WorkingCopy.objects.count() == 1


def test_unblurred_and_exempt_copies_keep_the_face(segment, face_clip):
    original = first_frame(face_clip)
    plain = working_copy_for(segment, blur=False)
    assert plain.faces_blurred == 0
    assert difference(original, first_frame(Path(plain.file.path)), FACE) < 4
    # The reviewer exempts the rectangle where the case's face is.
    exempt = working_copy_for(segment, blur=True, exempt=[(0.3, 0.1, 0.25, 0.25)])
    full = working_copy_for(segment, blur=True)
    assert exempt.faces_blurred < full.faces_blurred  # other detections stay pixelated
    assert difference(original, first_frame(Path(exempt.file.path)), FACE) < 4
    assert exempt.parameters["exempt_regions"] == [[0.3, 0.1, 0.25, 0.25]]
    assert len({plain.pk, exempt.pk}) == 2


def test_manifest_entries_and_purged_footage(world: World, segment):
    copy = working_copy_for(segment, blur=True)
    entries = working_copies_for_case(world.violent_case_a.pk)
    assert entries == [
        {
            "kind": "working_copy",
            "segment": segment.pk,
            "path": copy.file.name,
            "sha256": copy.sha256,
            "size": copy.size,
            "derived_from": {"kind": "original", "sha256": segment.original_sha256},
            "blur": True,
            "faces_blurred": copy.faces_blurred,
            "frames": 8,
            "tool": "abusewatch.operations.redaction",
            "tool_version": copy.tool_version,
            "parameters": copy.parameters,
            "created_at": copy.created_at.isoformat(),
            "created_by": None,
        }
    ]
    assert working_copies_for_case(world.uncertain_case_b.pk) == []
    # Released from every hold, the footage is erased and its working copies with it.
    world.violent_case_a.segments.remove(segment)
    world.uncertain_case_a.segments.remove(segment)
    copy_path = Path(copy.file.path)
    assert segment_purge(segment_id=segment.pk, reason="test") is not None
    assert not copy_path.exists() and not WorkingCopy.objects.exists()
    segment.refresh_from_db()
    with pytest.raises(WorkingCopyUnavailable):
        working_copy_for(segment, blur=True)


def test_an_original_that_no_longer_matches_its_hash_is_refused(segment):
    Segment.objects.filter(pk=segment.pk).update(original_sha256="0" * 64)
    segment.refresh_from_db()
    with pytest.raises(WorkingCopyUnavailable, match="SHA-256"):
        working_copy_for(segment, blur=True)


def get(user, url: str):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client.get(url)


def test_download_is_scoped_and_audited(world: World, segment):
    url = f"/ops/segments/{segment.pk}/working-copy.mp4"
    for username in ["alice", "erin", "sam", "lee", "olga"]:
        response = get(getattr(world, username), url)
        assert response.status_code == 200, username
        assert response["Content-Type"] == "video/mp4"
        assert "private" in response["Cache-Control"] and "no-store" in response["Cache-Control"]
        body = b"".join(response.streaming_content)
        assert hashlib.sha256(body).hexdigest() == response["X-Content-SHA256"]
        assert AuditEvent.objects.filter(
            actor_label=username, action="working_copy.view", outcome="success"
        ).exists()
    assert WorkingCopy.objects.count() == 1  # made once, served five times
    for username in ["bob", "pat", "charlie"]:
        assert get(getattr(world, username), url).status_code == 404, username
        assert AuditEvent.objects.filter(
            actor_label=username, action="working_copy.view", outcome="denied"
        ).exists()
    assert get(None, url).status_code == 404
    assert get(world.charlie, "/ops/segments/999999/working-copy.mp4").status_code == 404


def test_only_experts_turn_the_blur_off_and_it_is_audited(world: World, segment):
    url = f"/ops/segments/{segment.pk}/working-copy.mp4?blur=0"
    for username in ["lee", "alice"]:
        response = get(getattr(world, username), url)
        assert response.status_code == 403, username
        assert AuditEvent.objects.filter(
            actor_label=username, action="working_copy.blur_off", outcome="denied"
        ).exists()
    assert not WorkingCopy.objects.exists()
    response = get(world.erin, url)
    assert response.status_code == 200
    event = AuditEvent.objects.get(actor_label="erin", action="working_copy.blur_off")
    assert event.outcome == "success" and event.object_id == str(segment.pk)
    assert WorkingCopy.objects.get().blur is False


@pytest.mark.parametrize(
    "query",
    [
        "blur=2",
        "blur=yes",
        "exempt=a,b,c,d",
        "exempt=0.1,0.1,0.2",
        "exempt=1,1,1,1",
        "exempt=0.5,0.5,0.9,0.9",
        "exempt=nan,0,0.1,0.1",
        "exempt=" + ";".join(["0,0,0.1,0.1"] * 9),
        "exempt=" + "0" * 500,
        # Valid regions too: a parameter must never shape (and so multiply) the transcodes.
        "exempt=0.1,0.1,0.2,0.2",
        "exempt=",
    ],
)
def test_bad_parameters_are_clear_400s(world: World, segment, query: str):
    response = get(world.erin, f"/ops/segments/{segment.pk}/working-copy.mp4?{query}")
    assert response.status_code == 400
    assert response.content.strip()
    assert not WorkingCopy.objects.exists()


def test_purged_segment_is_404(world: World, segment):
    Case.objects.filter(pk__in=[world.uncertain_case_a.pk, world.violent_case_a.pk]).update(
        status=Case.Status.DISMISSED
    )
    world.report_a.delete()
    assert segment_purge(segment_id=segment.pk, reason="test") is not None
    assert get(world.olga, f"/ops/segments/{segment.pk}/working-copy.mp4").status_code == 404


def test_evidence_package_lists_working_copies_with_their_derivation(world: World, segment):
    import json
    import zipfile

    from reports.evidence import build_package, verify_package

    copy = working_copy_for(segment, blur=True)
    target = Path(segment.original.path).parent / "package.zip"
    with target.open("wb") as handle:
        manifest = build_package(world.report_a, handle)
    (entry,) = [s for s in manifest["segments"] if s["id"] == segment.pk]
    (derived,) = entry["working_copies"]
    name = f"working_copies/segment-{segment.pk}-{copy.pk}.mp4"
    assert derived["path"] == name and derived["sha256"] == copy.sha256
    assert derived["derived_from"] == {"kind": "original", "sha256": segment.original_sha256}
    assert derived["blur"] is True and derived["tool"] == "abusewatch.operations.redaction"
    assert {"path": name, "sha256": copy.sha256, "size": copy.size} in manifest["files"]
    with zipfile.ZipFile(target) as archive:
        assert hashlib.sha256(archive.read(name)).hexdigest() == copy.sha256
        assert json.loads(archive.read("manifest.json"))["segments"] == manifest["segments"]
    assert verify_package(target).ok


def test_distinct_exempt_values_make_no_new_transcode_one_copy_per_segment_and_policy(
    world: World, segment
):
    """Issue #16 item 5: every distinct `?exempt=` made and stored a new 5-second transcode."""
    url = f"/ops/segments/{segment.pk}/working-copy.mp4"
    assert get(world.erin, url).status_code == 200
    for value in ("0.1,0.1,0.2,0.2", "0.1,0.1,0.2,0.21", "0.3,0.1,0.25,0.25;0,0,0.1,0.1"):
        assert get(world.erin, f"{url}?exempt={value}").status_code == 400
        assert get(world.erin, f"{url}?blur=1&exempt={value}&x=1").status_code == 400
    for _ in range(3):
        assert get(world.erin, f"{url}?blur=1&cache-bust={_}").status_code == 200
    assert WorkingCopy.objects.filter(segment=segment).count() == 1


def test_packages_carry_only_the_default_blurred_copy_made_when_first_needed(
    world: World, segment, settings
):
    import zipfile

    settings.WORKING_COPIES_AHEAD = True
    from reports.evidence import verify_package
    from reports.services import evidence_package_create

    # An older copy with other parameters (made before issue #16) stays out of the package.
    other = working_copy_for(segment, blur=True, exempt=[(0.3, 0.1, 0.25, 0.25)])
    assert (
        not WorkingCopy.objects.filter(segment=segment, parameters=other.parameters)
        .exclude(pk=other.pk)
        .exists()
    )
    package = evidence_package_create(report=world.report_a, actor=world.lee)
    from reports.redaction import default_policy_key

    default = WorkingCopy.objects.get(segment=segment, parameters_key=default_policy_key())
    path = Path(package.file.path)
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.startswith("working_copies/")]
    assert names == [f"working_copies/segment-{segment.pk}-{default.pk}.mp4"]
    assert verify_package(path).ok


@pytest.mark.django_db(transaction=True)
def test_reporting_a_case_makes_its_blurred_copies_ahead_of_the_first_viewer(
    world: World, face_clip: bytes, settings, commit_and_react
):
    from reports.services import police_report_send
    from tests import factories

    settings.WORKING_COPIES_AHEAD = True
    case = factories.CaseFactory(camera=world.camera_a, band="violent", peak_score=0.95)
    window = footage_segment(world.camera_a, hours_old=2, original=face_clip)
    case.segments.add(window)
    with commit_and_react():
        police_report_send(case=case, reason="violent")
    copy = WorkingCopy.objects.get(segment=window)
    assert copy.blur is True and copy.faces_blurred > 0
