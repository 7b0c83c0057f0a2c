"""Key-encryption keys for envelope encryption: a small key-management interface.

Each object is encrypted under its own random data key; the data key is
stored beside the object *wrapped* (AES-256-GCM) under a key-encryption key
(KEK) named by a key id. :class:`KeyRing` is all the envelope store needs,
so a key-management service (Vault transit, a cloud KMS) can stand in for
the files by implementing its three members.

:class:`FileKeyRing` keeps KEKs in key files, each a 256-bit key in the
custody key-file format (32 raw bytes or 64 hex digits, mode 0600; see
:func:`edge_agent.custody.keyfile.read_key_file`). One key is *active* and
wraps every new data key; older keys only unwrap. A key's id is a
fingerprint derived from it, so renaming a file changes nothing and a wrong
file is reported by id. Rotation: create a new key file, make it the active
one, keep the old one among the old keys until
:func:`edge_agent.upload.envelope.rewrap_bucket` has re-wrapped every data
key under the new key, then retire it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge_agent.custody.keyfile import KEY_BYTES, read_key_file

from .errors import IntegrityError, StoreAccessDenied

__all__ = [
    "DATA_KEY_BYTES",
    "FileKeyRing",
    "KeyRing",
    "UnknownKeyError",
    "key_id_of",
]

# AES-256 data keys, like the custody buffer's.
DATA_KEY_BYTES = 32
_NONCE_BYTES = 12
# Domain labels: the key id and the wrapping never reuse the KEK's bytes as-is.
_KEY_ID_LABEL = b"suitlink store kek id v1"
_WRAP_LABEL = b"suitlink store data key v1|"


class UnknownKeyError(StoreAccessDenied):
    """An object's data key was wrapped under a key the key ring lacks."""


class KeyRing(Protocol):
    """Wrap data keys under the active KEK; unwrap under any known KEK."""

    @property
    def active_key_id(self) -> str:
        """Return the id of the key that wraps new data keys."""
        ...

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """Return the active key's id and ``data_key`` wrapped under it."""
        ...

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        """Return the data key ``wrapped`` under key ``key_id``.

        Raises:
            UnknownKeyError: no key with that id.
            IntegrityError: the wrapped key was altered or is not for that key.
        """
        ...


def key_id_of(kek: bytes) -> str:
    """Return the public id (16 hex digits) of a key-encryption key."""
    return hashlib.sha256(_KEY_ID_LABEL + kek).hexdigest()[:16]


class FileKeyRing:
    """Key-encryption keys held in memory, loaded from key files."""

    def __init__(self, active: bytes, old: Sequence[bytes] = ()) -> None:
        """Use ``active`` for new data keys and every key to unwrap.

        Raises:
            ValueError: a key is not 32 bytes.
        """
        for key in (active, *old):
            if len(key) != KEY_BYTES:
                raise ValueError(f"key ring: keys are {KEY_BYTES} bytes")
        self._active_id = key_id_of(active)
        self._keys = {key_id_of(key): AESGCM(key) for key in (*old, active)}

    @classmethod
    def from_files(cls, active: Path, old: Sequence[Path] = ()) -> FileKeyRing:
        """Load the active key file and the old ones.

        Raises:
            KeyFileError: a file is missing, too open or malformed.
        """
        return cls(read_key_file(active), [read_key_file(path) for path in old])

    @property
    def active_key_id(self) -> str:
        """Return the id of the key that wraps new data keys."""
        return self._active_id

    @property
    def key_ids(self) -> list[str]:
        """Return the ids of every key in the ring."""
        return sorted(self._keys)

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """Return the active key's id and ``data_key`` wrapped under it."""
        nonce = os.urandom(_NONCE_BYTES)
        aad = _WRAP_LABEL + self._active_id.encode()
        sealed = self._keys[self._active_id].encrypt(nonce, data_key, aad)
        return self._active_id, nonce + sealed

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        """Return the data key ``wrapped`` under key ``key_id``.

        Raises:
            UnknownKeyError: no key with that id.
            IntegrityError: the wrapped key was altered or is not for that key.
        """
        aead = self._keys.get(key_id)
        if aead is None:
            raise UnknownKeyError(
                f"data key wrapped under key {key_id}, which is not in the key "
                f"ring (known: {', '.join(self.key_ids)}); add its key file to "
                "the old keys"
            )
        nonce, sealed = wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:]
        try:
            data_key = aead.decrypt(nonce, sealed, _WRAP_LABEL + key_id.encode())
        except InvalidTag as exc:
            raise IntegrityError(
                f"data key wrapped under key {key_id} does not authenticate"
            ) from exc
        if len(data_key) != DATA_KEY_BYTES:
            raise IntegrityError(f"data key under key {key_id}: wrong length")
        return data_key
