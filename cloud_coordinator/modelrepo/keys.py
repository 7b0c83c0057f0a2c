"""Signing keys of the model repository's TUF roles, kept as PEM files.

Each top-level role has one or more Ed25519 private keys in the keys folder,
PKCS#8 PEM, mode 0600, named after the role::

    root.pem  root-2.pem  root-3.pem     (root may have several; threshold)
    targets.pem  snapshot.pem  timestamp.pem

Every ``{role}.pem`` and ``{role}-N.pem`` file is a key of that role. The root
keys sign only at initialisation and at root rotation, so in production they
live offline and are brought to the coordinator for those moments; the
targets, snapshot and timestamp keys stay online (publishing and the refresh
timer sign with them). Errors: ``RepoKeyError`` naming the file.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

# Documented public name, not re-exported explicitly by the package.
from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]

from .errors import RepoKeyError

__all__ = ["ROLES", "KeyRing", "generate_role_keys", "role_key_files"]

_LOGGER = logging.getLogger(__name__)

ROLES = ("root", "targets", "snapshot", "timestamp")
_KEY_FILE_MODE = 0o600


def role_key_files(keys_dir: Path, role: str) -> list[Path]:
    """Return the key files of ``role`` in ``keys_dir``, sorted by name."""
    pattern = re.compile(rf"{re.escape(role)}(-\d+)?\.pem")
    if not keys_dir.is_dir():
        return []
    return sorted(p for p in keys_dir.iterdir() if pattern.fullmatch(p.name))


def _write_private_key(path: Path, signer: CryptoSigner) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _KEY_FILE_MODE)
    with os.fdopen(fd, "wb") as stream:
        stream.write(signer.private_bytes)


def generate_role_keys(keys_dir: Path, *, root_keys: int = 1) -> dict[str, list[Path]]:
    """Create new Ed25519 keys for every role that has none yet.

    Args:
        keys_dir: the keys folder (created with mode 0700).
        root_keys: how many root keys to create (the root threshold may be
            up to this number).

    Returns:
        The key files of each role, old and new.

    Raises:
        RepoKeyError: the folder or a file cannot be written.
    """
    if root_keys < 1:
        raise RepoKeyError(f"root_keys must be >= 1, found {root_keys}")
    try:
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        files: dict[str, list[Path]] = {}
        for role in ROLES:
            existing = role_key_files(keys_dir, role)
            wanted = root_keys if role == "root" else 1
            for index in range(len(existing), wanted):
                name = f"{role}.pem" if index == 0 else f"{role}-{index + 1}.pem"
                _write_private_key(keys_dir / name, CryptoSigner.generate_ed25519())
                _LOGGER.info("model repo: created %s key %s", role, keys_dir / name)
            files[role] = role_key_files(keys_dir, role)
    except OSError as exc:
        raise RepoKeyError(f"{keys_dir}: cannot write signing keys: {exc}") from exc
    return files


def _load_signer(path: Path) -> CryptoSigner:
    try:
        private_key = load_pem_private_key(path.read_bytes(), None)
    except (OSError, ValueError, TypeError) as exc:
        raise RepoKeyError(f"{path}: not a readable PEM private key: {exc}") from exc
    if not isinstance(private_key, Ed25519PrivateKey):
        raise RepoKeyError(
            f"{path}: expected an Ed25519 key, found {type(private_key).__name__}"
        )
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        _LOGGER.warning(
            "%s: signing key is readable by others (mode %o); chmod 600 it",
            path,
            mode,
        )
    return CryptoSigner(private_key)


class KeyRing:
    """Load a role's signers from the keys folder on first use."""

    def __init__(self, keys_dir: Path) -> None:
        """Remember ``keys_dir``; nothing is read yet."""
        self.keys_dir = Path(keys_dir)
        self._signers: dict[str, list[CryptoSigner]] = {}

    def signers(self, role: str) -> list[CryptoSigner]:
        """Return every signer of ``role``.

        Raises:
            RepoKeyError: the role has no key file, or one is unusable.
        """
        if role not in self._signers:
            files = role_key_files(self.keys_dir, role)
            if not files:
                raise RepoKeyError(
                    f"{self.keys_dir}: no key file for role {role!r} ({role}.pem); "
                    "create keys with `cloud-coordinator models init`"
                )
            self._signers[role] = [_load_signer(path) for path in files]
        return self._signers[role]
