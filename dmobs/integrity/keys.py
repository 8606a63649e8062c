"""Ed25519 keys of the sealer, from the environment or files, never the database.

* ``DMOBS_AUDIT_SIGNING_KEY``: the private key, PEM (PKCS#8) text or the
  base64 of its 32 raw bytes; or ``DMOBS_AUDIT_SIGNING_KEY_FILE``: a PEM file.
  Only the sealer needs it. ``make run`` creates a development key in
  ``var/keys/`` (ignored by git) with ``manage.py audit_keygen``.
* ``DMOBS_AUDIT_PREVIOUS_SIGNING_KEY`` / ``..._FILE``: during a rotation, the
  key being retired; the sealer uses it once, to countersign the rotation digest.
* ``DMOBS_AUDIT_PUBLIC_KEYS`` / ``DMOBS_AUDIT_PUBLIC_KEY_FILE``: the trusted public
  key(s) the verifier checks the chain against (comma-separated base64 or a PEM
  file). Unset: the public half of the signing key. A web server that only
  verifies should get the public key alone.

A key's id is the first 16 hex digits of the SHA-256 of its 32 raw public bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class KeyProblem(Exception):
    """A key is missing or cannot be read; the message names the setting."""


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: Ed25519PublicKey | bytes) -> str:
    raw = public if isinstance(public, bytes) else public_raw(public)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_b64(key: Ed25519PublicKey) -> str:
    return base64.b64encode(public_raw(key)).decode()


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def generate_private_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private(text: str | bytes, *, origin: str) -> Ed25519PrivateKey:
    data = text.encode() if isinstance(text, str) else text
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(
                base64.b64decode(data.strip(), validate=True)
            )
    except (ValueError, TypeError, binascii.Error) as exc:
        raise KeyProblem(f"{origin}: not an Ed25519 private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyProblem(f"{origin}: the key is not an Ed25519 key")
    return key


def load_public(text: str | bytes, *, origin: str) -> Ed25519PublicKey:
    data = text.encode() if isinstance(text, str) else text
    try:
        if b"-----BEGIN" in data:
            if b"PRIVATE KEY" in data:
                return load_private(data, origin=origin).public_key()
            key = serialization.load_pem_public_key(data)
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(data.strip(), validate=True))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise KeyProblem(f"{origin}: not an Ed25519 public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyProblem(f"{origin}: the key is not an Ed25519 key")
    return key


def _read(path: str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise KeyProblem(f"{setting}: cannot read {path}: {exc.strerror}") from None


def _private_from_env(name: str) -> Ed25519PrivateKey | None:
    value = os.environ.get(name)
    if value:
        return load_private(value, origin=name)
    path = os.environ.get(f"{name}_FILE")
    if not path and name == "DMOBS_AUDIT_SIGNING_KEY":
        from django.conf import settings

        path = getattr(settings, "DMOBS_AUDIT_SIGNING_KEY_FILE", "") or ""
    if path:
        if not Path(path).exists():
            raise KeyProblem(
                f"{name}_FILE: {path} does not exist (create one with "
                "`manage.py audit_keygen --out <path>`)"
            )
        return load_private(_read(path, f"{name}_FILE"), origin=path)
    return None


def signing_key() -> Ed25519PrivateKey:
    key = _private_from_env("DMOBS_AUDIT_SIGNING_KEY")
    if key is None:
        raise KeyProblem(
            "No signing key: set DMOBS_AUDIT_SIGNING_KEY or DMOBS_AUDIT_SIGNING_KEY_FILE "
            "(`manage.py audit_keygen --out <path>` makes one)."
        )
    return key


def previous_signing_key() -> Ed25519PrivateKey | None:
    return _private_from_env("DMOBS_AUDIT_PREVIOUS_SIGNING_KEY")


def trusted_public_keys() -> list[Ed25519PublicKey]:
    """The keys a verification trusts (see the module docstring)."""
    keys: list[Ed25519PublicKey] = []
    listed = os.environ.get("DMOBS_AUDIT_PUBLIC_KEYS", "")
    for i, item in enumerate(part for part in listed.split(",") if part.strip()):
        keys.append(load_public(item.strip(), origin=f"DMOBS_AUDIT_PUBLIC_KEYS[{i}]"))
    path = os.environ.get("DMOBS_AUDIT_PUBLIC_KEY_FILE")
    if path:
        keys.append(load_public(_read(path, "DMOBS_AUDIT_PUBLIC_KEY_FILE"), origin=path))
    if not keys:
        keys.append(signing_key().public_key())
    return keys


def sign(key: Ed25519PrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data)).decode()


def signature_valid(public_b64_text: str, signature_b64: str, data: bytes) -> bool:
    try:
        public = Ed25519PublicKey.from_public_bytes(
            base64.b64decode(public_b64_text, validate=True)
        )
        public.verify(base64.b64decode(signature_b64, validate=True), data)
    except (InvalidSignature, ValueError, TypeError, binascii.Error):
        return False
    return True
