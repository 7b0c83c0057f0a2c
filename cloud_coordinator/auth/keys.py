"""Token keys: read from files, or generate new ones.

* HS256: one shared secret, the file's bytes (surrounding whitespace
  stripped), at least ``MIN_HMAC_KEY_BYTES``; :func:`generate_hmac_key`
  writes 64 random bytes as hex.
* ES256: a P-256 private key (PEM, PKCS#8) signs; its public key (PEM)
  verifies. The API only needs the public key, so a compromised API host
  cannot mint tokens.

A key file readable by group or others is used but logged as a warning.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .errors import KeyFileError

__all__ = [
    "MIN_HMAC_KEY_BYTES",
    "generate_es256_keypair",
    "generate_hmac_key",
    "read_es256_private_key",
    "read_es256_public_key",
    "read_hmac_key",
]

_LOGGER = logging.getLogger(__name__)

# RFC 7518 section 3.2: an HS256 key must be at least as long as the hash.
MIN_HMAC_KEY_BYTES = 32
# Random bytes in a generated HMAC key (twice the minimum).
GENERATED_HMAC_KEY_BYTES = 64


def _read(path: Path, what: str, *, secret: bool) -> bytes:
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(
            f"{what} {path}: {exc.strerror or exc}; create it with "
            "`cloud-coordinator keygen`"
        ) from exc
    if secret and mode & (stat.S_IRWXG | stat.S_IRWXO):
        _LOGGER.warning(
            "%s %s: readable by group or others (mode %o); chmod 600 it",
            what,
            path,
            stat.S_IMODE(mode),
        )
    return data


def read_hmac_key(path: Path) -> bytes:
    """Return the HS256 secret in ``path``.

    Raises:
        KeyFileError: unreadable, or shorter than ``MIN_HMAC_KEY_BYTES``.
    """
    key = _read(path, "HS256 secret key file", secret=True).strip()
    if len(key) < MIN_HMAC_KEY_BYTES:
        raise KeyFileError(
            f"HS256 secret key file {path}: {len(key)} bytes, at least "
            f"{MIN_HMAC_KEY_BYTES} needed; generate one with "
            "`cloud-coordinator keygen`"
        )
    return key


def read_es256_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Return the P-256 private key in ``path`` (PEM).

    Raises:
        KeyFileError: unreadable, not PEM, encrypted, or not a P-256 key.
    """
    data = _read(path, "ES256 private key file", secret=True)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(
            f"ES256 private key file {path}: not an unencrypted PEM private key ({exc})"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
        key.curve, ec.SECP256R1
    ):
        raise KeyFileError(f"ES256 private key file {path}: not a P-256 EC key")
    return key


def read_es256_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """Return the P-256 public key in ``path`` (PEM).

    Raises:
        KeyFileError: unreadable, not PEM, or not a P-256 key.
    """
    data = _read(path, "ES256 public key file", secret=False)
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise KeyFileError(
            f"ES256 public key file {path}: not a PEM public key ({exc})"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
        key.curve, ec.SECP256R1
    ):
        raise KeyFileError(f"ES256 public key file {path}: not a P-256 EC key")
    return key


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file only its owner can read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(
            f"key file {path}: already exists; refusing to overwrite a key "
            "that may be in use"
        ) from exc
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)


def generate_hmac_key(path: Path) -> None:
    """Write a new random HS256 secret to ``path`` (mode 600, never overwrite).

    Raises:
        KeyFileError: the file exists.
    """
    key = secrets.token_hex(GENERATED_HMAC_KEY_BYTES).encode() + b"\n"
    _write_private(path, key)


def generate_es256_keypair(private_path: Path, public_path: Path) -> None:
    """Write a new P-256 key pair: private (mode 600) and public PEM files.

    Raises:
        KeyFileError: either file exists.
    """
    if public_path.exists():
        raise KeyFileError(f"key file {public_path}: already exists")
    key = ec.generate_private_key(ec.SECP256R1())
    _write_private(
        private_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    public_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    )
