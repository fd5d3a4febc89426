from __future__ import annotations

import base64
import datetime as dt
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from reports.evidence import SIGNATURE, verify_package
from reports.models import EvidencePackage, PoliceReport
from reports.signing import key_fingerprint, public_key_pem, signing_key
from tests.conftest import World
from tests.support.footage import client_as

pytestmark = pytest.mark.django_db


def download_package(world: World, tmp_path: Path) -> Path:
    client = client_as(world.lee)
    report = world.report_a
    assert client.get(reverse("report-detail", args=[report.pk])).status_code == 200
    assert client.post(reverse("evidence-create", args=[report.pk])).status_code == 302
    page = client.get(reverse("report-detail", args=[report.pk]))
    link = page.context["packages"][0]["url"]
    response = client.get(link)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    path = tmp_path / "package.zip"
    path.write_bytes(response.getvalue())
    return path


def rewrite(src: Path, dst: Path, *, drop=(), replace=None, add=None) -> Path:
    replace = replace or {}
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for info in old.infolist():
            if info.filename in drop:
                continue
            data = replace.get(info.filename, old.read(info.filename))
            new.writestr(info, data)
        for name, data in (add or {}).items():
            new.writestr(name, data)
    return dst


def verify(path: Path, *args: str) -> str:
    try:
        call_command("verify_evidence", str(path), *args)
    except CommandError as exc:
        return f"FAILED {exc}"
    return "OK"


def test_package_contents_and_verification(footage: World, tmp_path: Path, capsys) -> None:
    path = download_package(footage, tmp_path)
    assert verify(path) == "OK"
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        segment = footage.violent_case_a.segments.order_by("started_at").first()
        assert segment is not None
        original_name = f"originals/segment-{segment.pk}.mp4"
        # The original is byte for byte what the camera sent.
        assert archive.read(original_name) == segment.original.read()
        summary = archive.read("summary.html").decode()
        trail = json.loads(archive.read("audit_trail.json"))
    assert {"manifest.json", "manifest.sig", "public_key.pem", "summary.html"} <= names
    assert len([n for n in names if n.startswith("previews/")]) == 2
    assert manifest["site"]["timezone"] == "Asia/Seoul"
    assert manifest["case"]["id"] == footage.violent_case_a.pk
    assert manifest["camera"]["id"] == footage.camera_a.pk
    assert manifest["segments"][0]["started_at_local"].endswith("+09:00")
    assert manifest["segments"][0]["detections"][0]["score"] == pytest.approx(0.91)
    assert manifest["model_versions"]
    listed = {f["path"] for f in manifest["files"]}
    assert listed == names - {"manifest.json", "manifest.sig", "public_key.pem"}
    assert "<svg" in summary and "bar-violent" in summary
    actions = {e["action"] for e in trail["events"]}
    # The trail holds what happened before the package was built (its own creation comes after).
    assert "report.view" in actions and trail["chain_intact"] is True
    assert all(len(e["hash"]) == 64 for e in trail["events"])
    assert AuditEvent.objects.filter(
        action="evidence_package.download", outcome="success", actor=footage.lee
    ).exists()


def test_flipping_any_byte_fails_verification(footage: World, tmp_path: Path) -> None:
    path = download_package(footage, tmp_path)
    data = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(archive.namelist()[0])
    # Inside a clip, inside a local header (its time stamp) and in the central directory.
    inside_clip = info.header_offset + 30 + len(info.filename) + 5000
    for offset in (inside_clip, 10, len(data) - 30):
        tampered = bytearray(data)
        tampered[offset] ^= 0x01
        bad = tmp_path / f"flipped-{offset}.zip"
        bad.write_bytes(bytes(tampered))
        assert verify(bad).startswith("FAILED"), offset
    # Offline (no server records), a changed byte inside a file is still caught by its hash.
    tampered = bytearray(data)
    tampered[inside_clip] ^= 0x01
    bad = tmp_path / "flipped-offline.zip"
    bad.write_bytes(bytes(tampered))
    result = verify_package(bad)
    assert not result.ok
    assert any(info.filename in p for p in result.problems), result.problems


def test_removed_added_and_resigned_files_are_named(footage: World, tmp_path: Path) -> None:
    path = download_package(footage, tmp_path)
    with zipfile.ZipFile(path) as archive:
        original = next(n for n in archive.namelist() if n.startswith("originals/"))
        manifest_bytes = archive.read("manifest.json")

    removed = verify_package(rewrite(path, tmp_path / "removed.zip", drop={original}))
    assert f"{original}: listed in the manifest but missing" in removed.problems

    added = verify_package(rewrite(path, tmp_path / "added.zip", add={"originals/extra.mp4": b"x"}))
    assert "originals/extra.mp4: extra file not listed in the manifest" in added.problems

    changed = verify_package(
        rewrite(path, tmp_path / "changed.zip", replace={original: b"not the footage"})
    )
    assert any(p.startswith(f"{original}: size") for p in changed.problems)
    assert any("SHA-256" in p and original in p for p in changed.problems)

    # Another key's signature over the same manifest: the packaged key refuses it.
    other = Ed25519PrivateKey.generate()
    forged_sig = base64.b64encode(other.sign(manifest_bytes))
    swapped = verify_package(
        rewrite(path, tmp_path / "swapped.zip", replace={"manifest.sig": forged_sig})
    )
    assert any(p.startswith("manifest.sig: the signature does not match") for p in swapped.problems)

    # An edited manifest re-signed with a forger's key and shipping that key: self-consistent,
    # but not the server's key.
    edited = json.loads(manifest_bytes)
    edited["case"]["peak_score"] = 0.1
    edited_bytes = json.dumps(edited).encode()
    resigned = rewrite(
        path,
        tmp_path / "resigned.zip",
        replace={
            "manifest.json": edited_bytes,
            "manifest.sig": base64.b64encode(other.sign(edited_bytes)),
            "public_key.pem": public_key_pem(other),
        },
    )
    assert verify_package(resigned).ok  # consistent on its own ...
    assert verify(resigned).startswith("FAILED")  # ... but not signed by this server.
    # Away from the server the key inside the package proves nothing: offline without a
    # trusted key is a failure that names the signer, and a trusted key or fingerprint
    # tells the forgery from the real package.
    server_fp = key_fingerprint(public_key_pem(signing_key()))
    unpinned = verify(resigned, "--offline")
    assert "FAILED" in unpinned
    assert verify(resigned, "--offline", "--fingerprint", server_fp).startswith("FAILED")
    server_key = tmp_path / "server.pem"
    server_key.write_bytes(public_key_pem(signing_key()))
    assert verify(resigned, "--offline", "--public-key", str(server_key)).startswith("FAILED")
    assert verify(path, "--offline", "--fingerprint", server_fp) == "OK"
    assert verify(path, "--offline", "--public-key", str(server_key)) == "OK"
    assert verify(path, "--offline").startswith("FAILED")
    assert verify(path, "--public-key", str(tmp_path / "absent.pem")).startswith("FAILED")

    edited_unsigned = verify_package(
        rewrite(path, tmp_path / "edited.zip", replace={"manifest.json": edited_bytes})
    )
    assert not edited_unsigned.ok

    not_zip = tmp_path / "not.zip"
    not_zip.write_bytes(b"hello")
    assert verify(not_zip).startswith("FAILED")


def test_links_are_per_user_and_expire(footage: World, tmp_path: Path) -> None:
    w = footage
    lee = client_as(w.lee)
    lee.post(reverse("evidence-create", args=[w.report_a.pk]))
    link = lee.get(reverse("report-detail", args=[w.report_a.pk])).context["packages"][0]["url"]
    # Another liaison, an admin and an outsider cannot use Lee's link.
    for user in (w.pat, w.alice, w.charlie, w.erin):
        assert client_as(user).get(link).status_code == 404
    assert client_as(None).get(link).status_code == 302  # to the login page
    denied = AuditEvent.objects.filter(action="evidence_package.download", outcome="denied")
    assert denied.count() == 4
    assert lee.get(link + "x").status_code == 404
    EvidencePackage.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert lee.get(link).status_code == 404
    page = lee.get(reverse("report-detail", args=[w.report_a.pk]))
    assert page.context["packages"][0]["url"] is None


def test_token_older_than_link_minutes_is_refused(footage: World, settings) -> None:
    w = footage
    lee = client_as(w.lee)
    lee.post(reverse("evidence-create", args=[w.report_a.pk]))
    link = lee.get(reverse("report-detail", args=[w.report_a.pk])).context["packages"][0]["url"]
    settings.EVIDENCE_LINK_MINUTES = -1  # every token is now older than the limit
    assert lee.get(link).status_code == 404


def test_reports_are_scoped_to_the_station(footage: World) -> None:
    w = footage
    report = w.report_a
    for user in (w.pat, w.alice, w.erin, w.charlie):
        client = client_as(user)
        assert client.get(reverse("report-detail", args=[report.pk])).status_code == 404
        assert client.post(reverse("evidence-create", args=[report.pk])).status_code == 404
        assert (
            client.post(
                reverse("report-status", args=[report.pk]), {"status": "acknowledged"}
            ).status_code
            == 404
        )
    assert not EvidencePackage.objects.exists()
    report.refresh_from_db()
    assert report.status == PoliceReport.Status.SENT
    assert f'data-report="{report.pk}"' not in client_as(w.pat).get(reverse("report-list")).text
    assert client_as(w.charlie).get(reverse("report-list")).status_code == 403
    assert f'data-report="{report.pk}"' in client_as(w.lee).get(reverse("report-list")).text
    assert AuditEvent.objects.filter(action="report.view", outcome="denied").count() == 4


def test_status_updates_and_bad_input(footage: World) -> None:
    w = footage
    lee = client_as(w.lee)
    url = reverse("report-status", args=[w.report_a.pk])
    # Skipping a step, unknown values and huge notes are refused with the field named.
    for data in (
        {"status": "dispatched"},
        {"status": "<script>alert(1)</script>"},
        {"status": ["acknowledged", "closed"], "note": "n" * 6000},
        {},
    ):
        response = lee.post(url, data)
        assert response.status_code == 400
        assert "errorlist" in response.text
        assert "<script>alert(1)</script>" not in response.text
    response = lee.post(url, {"status": "acknowledged", "note": "<b>on our way</b>"})
    assert response.status_code == 302
    w.report_a.refresh_from_db()
    assert w.report_a.status == "acknowledged" and w.report_a.handled_by == w.lee
    page = lee.get(reverse("report-detail", args=[w.report_a.pk])).text
    assert "&lt;b&gt;on our way&lt;/b&gt;" in page
    lee.post(url, {"status": "dispatched"})
    lee.post(url, {"status": "closed"})
    w.report_a.refresh_from_db()
    w.violent_case_a.refresh_from_db()
    assert w.report_a.status == "closed" and w.violent_case_a.status == "closed"


def test_offline_failure_names_the_packages_signer(footage: World, tmp_path: Path, capsys) -> None:
    path = download_package(footage, tmp_path)
    with pytest.raises(CommandError):
        call_command("verify_evidence", str(path), "--offline")
    server_fp = key_fingerprint(public_key_pem(signing_key()))
    assert f"signer not checked: the package is signed by {server_fp}" in capsys.readouterr().err


def test_report_page_shows_the_servers_key_fingerprint(footage: World) -> None:
    page = client_as(footage.lee).get(reverse("report-detail", args=[footage.report_a.pk]))
    server_fp = key_fingerprint(public_key_pem(signing_key()))
    assert f"--fingerprint {server_fp}" in page.content.decode()


def test_a_stored_file_gone_missing_still_gives_a_valid_package(
    footage: World, tmp_path: Path
) -> None:
    segment = footage.violent_case_a.segments.order_by("started_at").first()
    assert segment is not None
    Path(segment.preview.path).unlink()
    path = download_package(footage, tmp_path)
    assert verify(path) == "OK"
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert f"previews/segment-{segment.pk}.mp4" not in archive.namelist()
    entry = next(e for e in manifest["segments"] if e["id"] == segment.pk)
    assert entry["preview"] is None
    assert entry["preview_missing"] == "erased before the package was built"


def _resigned(src: Path, dst: Path, manifest: dict[str, Any]) -> Path:
    """The package with `manifest` signed by the server's own key, so only the content is odd."""
    data = json.dumps(manifest).encode()
    signature = base64.b64encode(signing_key().sign(data))
    return rewrite(src, dst, replace={"manifest.json": data, SIGNATURE: signature})


def _with_member_flags(src: Path, dst: Path, name: str, *, method: int = 0, flags: int = 0) -> Path:
    """Rewrite the local and central headers of `name` to claim another method or flags."""
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as archive:
        local = archive.getinfo(name).header_offset
        central = archive.start_dir
    while data[central + 46 : central + 46 + len(name)] != name.encode():
        central = data.index(b"PK\x01\x02", central + 4)
    for header, flag_at, method_at in ((local, 6, 8), (central, 8, 10)):
        if method:
            data[header + method_at : header + method_at + 2] = method.to_bytes(2, "little")
        if flags:
            old = int.from_bytes(data[header + flag_at : header + flag_at + 2], "little")
            data[header + flag_at : header + flag_at + 2] = (old | flags).to_bytes(2, "little")
    dst.write_bytes(bytes(data))
    return dst


def test_hostile_packages_are_reported_not_crashed_on(footage: World, tmp_path: Path) -> None:
    path = download_package(footage, tmp_path)
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))

    # Unsigned manifest content with the wrong types where verification looks up the report.
    for n, report in enumerate(("x", {"id": "abc"}, {"id": 10**30}, {"id": True}, None)):
        odd = _resigned(path, tmp_path / f"odd-{n}.zip", {**manifest, "report": report})
        assert verify(odd).startswith("FAILED"), report
    for n, head in enumerate(("x", {"event": "1", "hash": None}, {"event": -1, "hash": []})):
        odd = _resigned(path, tmp_path / f"head-{n}.zip", {**manifest, "audit_chain_head": head})
        assert verify(odd).startswith("FAILED"), head

    # A manifest stored with a compression method zipfile does not know, and one flagged as
    # encrypted.
    unknown_method = _with_member_flags(path, tmp_path / "method.zip", "manifest.json", method=99)
    encrypted = _with_member_flags(path, tmp_path / "encrypted.zip", "manifest.json", flags=0x1)
    for hostile in (unknown_method, encrypted):
        result = verify_package(hostile)
        assert any("cannot read the signed manifest" in p for p in result.problems), hostile
        assert verify(hostile).startswith("FAILED")

    # A public key of an algorithm that cannot sign this (P-256) and one that is not a key.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    p256 = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for n, pem in enumerate(
        (p256, b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    ):
        bad_key = rewrite(path, tmp_path / f"key-{n}.zip", replace={"public_key.pem": pem})
        assert not verify_package(bad_key).ok
        assert verify(bad_key).startswith("FAILED")

    # A small ZIP whose manifest inflates to 80 MiB is refused before it is read whole.
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(bomb, "w") as new:
        for info in old.infolist():
            if info.filename != "manifest.json":
                new.writestr(info, old.read(info.filename))
        new.writestr("manifest.json", b" " * (80 * 1024 * 1024), zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 2 * 1024 * 1024
    result = verify_package(bomb)
    assert any("manifest.json is larger than" in p for p in result.problems), result.problems


def test_package_pins_the_audit_chain_head(footage: World, tmp_path: Path) -> None:
    path = download_package(footage, tmp_path)
    with zipfile.ZipFile(path) as archive:
        pinned = json.loads(archive.read("manifest.json"))["audit_chain_head"]
    assert AuditEvent.objects.filter(pk=pinned["event"], hash=pinned["hash"]).exists()
    audit_record(actor=None, action="later.event")
    assert verify(path) == "OK"  # the chain growing after the package is fine

    # Cutting the chain back below the pinned event (triggers dropped by someone with database
    # access) leaves a chain that verifies on its own; the package held by the police does not.
    AuditEvent.objects.filter(pk__gte=pinned["event"]).delete()
    assert verify(path).startswith("FAILED")
