"""Evidence packages: a signed ZIP of a reported case's footage, findings and audit trail.

Layout of a package:
    manifest.json      what is in the package: case, site, camera, times (UTC and the site's
                       zone), detections with model versions, review decisions, and the
                       SHA-256 and size of every other file
    manifest.sig       base64 Ed25519 signature over the exact bytes of manifest.json
    public_key.pem     the key that verifies manifest.sig
    originals/         the segments as the camera sent them, byte for byte
    previews/          browser-playable copies
    working_copies/    re-encoded copies with faces pixelated (derivation in the manifest)
    audit_trail.json   the audit events about the case, its segments, report and packages
    summary.html       a readable summary with the score timeline
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import zipfile
import zoneinfo
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db.models import Q
from django.db.models.fields.files import FieldFile
from django.template.loader import render_to_string
from django.utils import timezone

from audit.hashing import file_sha256
from audit.models import AuditEvent
from audit.services import audit_verify_chain
from detection.models import Detection, Segment
from portal.timeline import timeline_bars
from reports.models import EvidencePackage, PoliceReport
from reports.redaction import default_policy_key, working_copy_manifest_entry
from reports.signing import key_fingerprint, public_key_pem, signing_key

FORMAT = "abusewatch-evidence/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "public_key.pem"
SIGNED_ENVELOPE = frozenset({MANIFEST, SIGNATURE, PUBLIC_KEY})
# Every entry carries this time, so the same content always gives the same bytes.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_CHUNK = 1024 * 1024
# The most a manifest, signature or key of a real package needs; larger members are refused
# before they are read, so a small crafted ZIP cannot inflate gigabytes into memory.
_ENVELOPE_LIMITS = {MANIFEST: 64 * 1024 * 1024, SIGNATURE: 4096, PUBLIC_KEY: 4096}
# Report ids fit a signed 64-bit column; anything else in an unsigned manifest is not looked up.
_MAX_DB_ID = 2**63 - 1


def _utc(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value else None


def _local(value: dt.datetime | None, zone: zoneinfo.ZoneInfo) -> str | None:
    return value.astimezone(zone).isoformat() if value else None


def _file_name(kind: str, segment: Segment, field_file: FieldFile) -> str:
    suffix = PurePosixPath(field_file.name or "").suffix.lower() or ".mp4"
    return f"{kind}/segment-{segment.pk}{suffix}"


def _audit_events(report: PoliceReport, segment_ids: list[int]) -> list[AuditEvent]:
    about = (
        Q(object_type="detection.Case", object_id=str(report.case_id))
        | Q(object_type="detection.Segment", object_id__in=[str(pk) for pk in segment_ids])
        | Q(object_type="reports.PoliceReport", object_id=str(report.pk))
        | Q(
            object_type="reports.EvidencePackage",
            object_id__in=[str(pk) for pk in report.packages.values_list("pk", flat=True)],
        )
    )
    return list(AuditEvent.objects.filter(about).order_by("id"))


def _event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "occurred_at": _utc(event.occurred_at),
        "actor": event.actor_label,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "outcome": event.outcome,
        "ip_address": event.ip_address,
        "details": event.details,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def _latest_detection(detections: list[Detection], segment: Segment) -> Detection | None:
    mine = [d for d in detections if d.segment_id == segment.pk]
    return mine[-1] if mine else None


def _canonical(data: Any) -> bytes:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")


@dataclass
class _Builder:
    archive: zipfile.ZipFile
    files: list[dict[str, Any]] = field(default_factory=list)

    def add_bytes(self, name: str, data: bytes) -> None:
        self.archive.writestr(self._info(name), data)
        self.files.append(
            {"path": name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        )

    def add_field_file(self, name: str, field_file: FieldFile) -> str:
        """Copy a stored file into the archive; FileNotFoundError leaves the archive untouched.

        The source is opened before its entry: an entry opened first stays in the ZIP, empty
        and unlisted, when the file turns out to be gone, and the package fails its own check.
        """
        digest = hashlib.sha256()
        size = 0
        with (
            field_file.open("rb") as source,
            self.archive.open(self._info(name), "w", force_zip64=True) as target,
        ):
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                target.write(chunk)
        self.files.append({"path": name, "sha256": digest.hexdigest(), "size": size})
        return digest.hexdigest()

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
        # Video is already compressed; storing keeps the originals' bytes visible as they are.
        info.compress_type = zipfile.ZIP_STORED
        return info


def build_package(report: PoliceReport, target: io.BufferedIOBase | Any) -> dict[str, Any]:
    """Write the package of `report` to `target` (a binary file) and return its manifest."""
    case = report.case
    camera = case.camera
    site = camera.site
    zone = zoneinfo.ZoneInfo(site.timezone)
    segments = list(case.segments.select_related("camera").order_by("started_at"))
    detections = list(
        Detection.objects.filter(segment__in=segments)
        .select_related("model_version")
        .order_by("segment__started_at", "created_at")
    )
    decisions = list(case.decisions.select_related("expert").order_by("created_at"))
    events = _audit_events(report, [s.pk for s in segments])
    key = signing_key()
    public_pem = public_key_pem(key)
    generated_at = timezone.now()
    default_key = default_policy_key()

    with zipfile.ZipFile(target, "w", allowZip64=True) as archive:
        builder = _Builder(archive)
        segment_entries = []
        for segment in segments:
            entry: dict[str, Any] = {
                "id": segment.pk,
                "started_at_utc": _utc(segment.started_at),
                "ended_at_utc": _utc(segment.ended_at),
                "started_at_local": _local(segment.started_at, zone),
                "ended_at_local": _local(segment.ended_at, zone),
                "source": segment.source,
                "original": None,
                "preview": None,
                "original_sha256_at_ingest": segment.original_sha256 or None,
                "detections": [
                    {
                        "model_version": d.model_version.name,
                        "score": d.score,
                        "band": d.band,
                        "low_threshold": d.low_threshold,
                        "high_threshold": d.high_threshold,
                        "scored_at_utc": _utc(d.created_at),
                    }
                    for d in detections
                    if d.segment_id == segment.pk
                ],
            }
            for kind, field_file in (("original", segment.original), ("preview", segment.preview)):
                if not field_file:
                    continue
                name = _file_name(f"{kind}s", segment, field_file)
                try:
                    digest = builder.add_field_file(name, field_file)
                except FileNotFoundError:
                    entry[f"{kind}_missing"] = "erased before the package was built"
                    continue
                entry[kind] = name
                if kind == "original" and segment.original_sha256:
                    entry["original_matches_ingest_hash"] = digest == segment.original_sha256
            # The working copy (bystanders' faces pixelated) every viewer watched, with how it
            # was derived. Only the default policy's: copies made once with other parameters
            # do not belong in what the police receive (issue #16: they once grew a package
            # fourfold).
            entry["working_copies"] = []
            for copy in segment.working_copies.filter(parameters_key=default_key).order_by("pk"):
                name = f"working_copies/segment-{segment.pk}-{copy.pk}.mp4"
                try:
                    builder.add_field_file(name, copy.file)
                except FileNotFoundError:
                    continue
                entry["working_copies"].append({**working_copy_manifest_entry(copy), "path": name})
            segment_entries.append(entry)

        chain_break = audit_verify_chain()
        head = AuditEvent.objects.order_by("-id").values("id", "hash").first()
        audit = {
            "chain_intact": chain_break is None,
            "chain_break": (
                {"event": chain_break.event_id, "reason": chain_break.reason}
                if chain_break
                else None
            ),
            "events": [_event_json(event) for event in events],
        }
        builder.add_bytes("audit_trail.json", _canonical(audit))

        origin = segments[0].started_at if segments else case.started_at
        bars = timeline_bars(
            (
                (segment.started_at - origin).total_seconds(),
                (segment.ended_at - origin).total_seconds(),
                latest.score,
                latest.band,
                segment.pk,
                True,
            )
            for segment in segments
            if (latest := _latest_detection(detections, segment)) is not None
        )
        summary = render_to_string(
            "reports/evidence_summary.html",
            {
                "report": report,
                "case": case,
                "camera": camera,
                "site": site,
                "segments": segment_entries,
                "decisions": decisions,
                "events": events,
                "bars": bars,
                "generated_at": generated_at,
                "chain_intact": chain_break is None,
                "fingerprint": key_fingerprint(public_pem),
            },
        )
        builder.add_bytes("summary.html", summary.encode("utf-8"))

        manifest: dict[str, Any] = {
            "format": FORMAT,
            "generated_at_utc": _utc(generated_at),
            "public_key_fingerprint": key_fingerprint(public_pem),
            "report": {
                "id": report.pk,
                "station": report.station.name,
                "reason": report.reason,
                "status": report.status,
                "sent_at_utc": _utc(report.sent_at),
                "sent_at_local": _local(report.sent_at, zone),
            },
            "case": {
                "id": case.pk,
                "status": case.status,
                "band": case.band,
                "peak_score": case.peak_score,
                "started_at_utc": _utc(case.started_at),
                "ended_at_utc": _utc(case.ended_at),
                "started_at_local": _local(case.started_at, zone),
                "ended_at_local": _local(case.ended_at, zone),
            },
            "site": {
                "id": site.pk,
                "name": site.name,
                "address": site.address,
                "region": site.region,
                "timezone": site.timezone,
            },
            "camera": {"id": camera.pk, "name": camera.name},
            "model_versions": sorted({d.model_version.name for d in detections}),
            "segments": segment_entries,
            "review_decisions": [
                {
                    "expert": d.expert.get_username(),
                    "verdict": d.verdict,
                    "category": d.category,
                    "span_start_seconds": d.span_start_seconds,
                    "span_end_seconds": d.span_end_seconds,
                    "notes": d.notes,
                    "outcome": d.outcome,
                    "decided_at_utc": _utc(d.created_at),
                }
                for d in decisions
            ],
            "audit_events": len(events),
            # The chain's newest event when the package was built. Packages leave the server,
            # so each one held by the police pins the chain up to here: a chain later rewritten
            # or cut back below this event no longer matches (`verify_evidence` checks it).
            "audit_chain_head": (
                {"event": head["id"], "hash": head["hash"]} if head is not None else None
            ),
            "files": builder.files,
        }
        manifest_bytes = _canonical(manifest)
        signature = base64.b64encode(key.sign(manifest_bytes))
        for name, data in (
            (MANIFEST, manifest_bytes),
            (SIGNATURE, signature + b"\n"),
            (PUBLIC_KEY, public_pem),
        ):
            archive.writestr(builder._info(name), data)
    return manifest


@dataclass
class Verification:
    problems: list[str] = field(default_factory=list)
    checked_files: int = 0
    manifest: dict[str, Any] | None = None
    # Fingerprint of the key inside the package: whoever built the package chose it, so it
    # proves nothing until it is compared with a key the checker trusts.
    signer_fingerprint: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _sha256_of_member(archive: zipfile.ZipFile, name: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with archive.open(name) as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _read_envelope_member(archive: zipfile.ZipFile, name: str) -> bytes:
    limit = _ENVELOPE_LIMITS[name]
    with archive.open(name) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{name} is larger than {limit} bytes")
    return data


def _fingerprint_key(fingerprint: str | None) -> str:
    return (fingerprint or "").strip().casefold()


def verify_package(path: Path, *, trusted_fingerprints: Sequence[str] = ()) -> Verification:
    """Check a package: signature over the manifest, then every file against the manifest.

    The package must be signed by the key of every fingerprint in ``trusted_fingerprints``
    (see ``key_fingerprint``); with none, only its consistency with its own key is checked.
    """
    result = Verification()
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        result.problems.append(f"not a readable ZIP file: {exc}")
        return result
    with archive:
        names = archive.namelist()
        duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
        for name in duplicates:
            result.problems.append(f"{name}: appears more than once in the archive")
        try:
            bad_member = archive.testzip()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            result.problems.append(f"archive structure is damaged: {exc}")
            bad_member = None
        except Exception as exc:  # zlib and struct errors from a mangled archive
            result.problems.append(f"archive structure is damaged: {exc!r}")
            bad_member = None
        if bad_member is not None:
            result.problems.append(f"{bad_member}: CRC check failed (content changed)")
        missing_envelope = [n for n in (MANIFEST, SIGNATURE, PUBLIC_KEY) if n not in names]
        for name in missing_envelope:
            result.problems.append(f"{name}: missing")
        if missing_envelope:
            return result
        try:
            manifest_bytes = _read_envelope_member(archive, MANIFEST)
            signature = base64.b64decode(
                _read_envelope_member(archive, SIGNATURE).strip(), validate=True
            )
            public_pem = _read_envelope_member(archive, PUBLIC_KEY)
        except Exception as exc:  # anything a hostile archive raises: methods, encryption, zlib
            result.problems.append(f"cannot read the signed manifest: {exc!r}")
            return result
        result.signer_fingerprint = key_fingerprint(public_pem)
        try:
            public_key = serialization.load_pem_public_key(public_pem)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            result.problems.append(f"{PUBLIC_KEY}: not a usable public key ({exc})")
            return result
        if not isinstance(public_key, Ed25519PublicKey):
            result.problems.append(f"{PUBLIC_KEY}: not an Ed25519 key")
            return result
        try:
            public_key.verify(signature, manifest_bytes)
        except InvalidSignature:
            result.problems.append(
                f"{SIGNATURE}: the signature does not match {MANIFEST} "
                "(the manifest or its signature was changed)"
            )
        for trusted in trusted_fingerprints:
            # Compared case-insensitively: a fingerprint read aloud or copied by hand from the
            # report page keeps its digits whatever the case of its hex letters or prefix.
            if _fingerprint_key(result.signer_fingerprint) != _fingerprint_key(trusted):
                result.problems.append(
                    f"{PUBLIC_KEY}: signed by {result.signer_fingerprint}, not by the trusted key "
                    f"{trusted}"
                )
        try:
            manifest = json.loads(manifest_bytes)
            listed = {entry["path"]: entry for entry in manifest["files"]}
        except (ValueError, KeyError, TypeError) as exc:
            result.problems.append(f"{MANIFEST}: not a valid manifest ({exc})")
            return result
        result.manifest = manifest
        present = set(names) - SIGNED_ENVELOPE
        for name in sorted(set(listed) - present):
            result.problems.append(f"{name}: listed in the manifest but missing")
        for name in sorted(present - set(listed)):
            result.problems.append(f"{name}: extra file not listed in the manifest")
        for name in sorted(set(listed) & present):
            entry = listed[name]
            try:
                digest, size = _sha256_of_member(archive, name)
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                result.problems.append(f"{name}: cannot be read ({exc})")
                continue
            except Exception as exc:  # zlib errors from a mangled entry
                result.problems.append(f"{name}: cannot be read ({exc!r})")
                continue
            result.checked_files += 1
            if size != entry.get("size"):
                result.problems.append(
                    f"{name}: size {size} bytes, manifest says {entry.get('size')}"
                )
            if digest != entry.get("sha256"):
                result.problems.append(
                    f"{name}: SHA-256 {digest} does not match the manifest's {entry.get('sha256')}"
                )
    return result


def issued_package_problems(path: Path, manifest: dict[str, Any] | None) -> list[str]:
    """Compare the whole file with what this server issued for the report it names.

    The signature covers the content; this also catches a byte changed in the ZIP's own
    structure (headers, comment) that leaves every file's content intact.
    """
    digest = file_sha256(path)
    if EvidencePackage.objects.filter(sha256=digest).exists():
        return _audit_head_problems(manifest)
    report_id = _manifest_id(manifest, "report")
    issued = EvidencePackage.objects.filter(report_id=report_id) if report_id else None
    if issued is not None and issued.exists():
        return [
            f"the package file (SHA-256 {digest}) is not byte-identical to any package issued "
            f"for report {report_id}"
        ]
    return [f"no package with SHA-256 {digest} was issued by this server"]


def _manifest_id(manifest: dict[str, Any] | None, section: str, key: str = "id") -> int | None:
    """An id read from a manifest, or None where it is absent or not a plausible row id."""
    part = manifest.get(section) if isinstance(manifest, dict) else None
    value = part.get(key) if isinstance(part, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_DB_ID:
        return None
    return value


def _audit_head_problems(manifest: dict[str, Any] | None) -> list[str]:
    """Is the audit event the package pinned still in the chain, with the same hash?"""
    pinned = manifest.get("audit_chain_head") if isinstance(manifest, dict) else None
    if not isinstance(pinned, dict):
        return []  # packages built before heads were pinned, or on an empty chain
    event_id = _manifest_id(manifest, "audit_chain_head", "event")
    pinned_hash = pinned.get("hash")
    still_there = (
        event_id is not None
        and isinstance(pinned_hash, str)
        and AuditEvent.objects.filter(pk=event_id, hash=pinned_hash).exists()
    )
    if not still_there:
        return [
            f"the audit chain no longer holds event {pinned.get('event')} with the hash this "
            "package recorded: the chain was changed after the package was issued"
        ]
    chain_break = audit_verify_chain(AuditEvent.objects.filter(pk__lte=event_id))
    if chain_break is not None:
        return [
            f"the audit chain up to this package's event {event_id} is broken at event "
            f"{chain_break.event_id}: {chain_break.reason}"
        ]
    return []
