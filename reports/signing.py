"""The Ed25519 key that signs evidence manifests."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _parse_private(text: str) -> Ed25519PrivateKey:
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except ValueError as exc:
        raise ImproperlyConfigured(f"EVIDENCE_SIGNING_KEY is not an Ed25519 key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured("EVIDENCE_SIGNING_KEY must be an Ed25519 key.")
    return key


def _dev_key(path: Path) -> Ed25519PrivateKey:
    if path.exists():
        return _parse_private(path.read_text(encoding="ascii"))
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written to a temporary name first, so a concurrent process never reads half a key.
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return _parse_private(path.read_text(encoding="ascii"))


def signing_key() -> Ed25519PrivateKey:
    configured = settings.EVIDENCE_SIGNING_KEY
    if configured:
        return _parse_private(configured)
    if settings.EVIDENCE_ALLOW_DEV_KEY:
        return _dev_key(Path(settings.EVIDENCE_DEV_KEY_PATH))
    raise ImproperlyConfigured(
        "EVIDENCE_SIGNING_KEY (or EVIDENCE_SIGNING_KEY_FILE) is required to sign evidence."
    )


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_fingerprint(public_pem: bytes) -> str:
    return "SHA256:" + hashlib.sha256(public_pem.strip()).hexdigest()
