"""Release key and release receipts (protocol version 2).

A bonded gateway lets the suit erase a log with RELEASE_LOG carrying a
*receipt*: a digest of the upload the cloud committed and an HMAC that binds
it to the log's id and SHA-256 under a key only the suit and that gateway
hold.  The suit checks the MAC (the release came from its bonded gateway) and
the SHA-256 (the upload was made from the bytes it holds); it cannot check
the upload itself, so the digest is opaque to it and kept as evidence.

Release key, computed by both sides after ENROLL on an encrypted link::

    release_key = HMAC-SHA256(key = "suit-release-key/2",
                              msg = gateway_nonce[32] || suit_nonce[32])

Upload digest, computed by the gateway from its custody record::

    SHA-256("suit-upload/2"
            || for each object, by name:  "K" u16 n name[n] u16 m key[m]
            || for each output, by name:  "S" u16 n name[n] sha256[32])

names and keys UTF-8, lengths little-endian.  Receipt MAC::

    HMAC-SHA256(release_key, "suit-release/2" || log_id[16] || sha256[32]
                             || upload_digest[32])
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import struct
from collections.abc import Mapping

from firmware_bridge.ble.protocol.constants import (
    NONCE_BYTES,
    RECEIPT_MAC_BYTES,
    SHA256_BYTES,
)
from firmware_bridge.ble.protocol.errors import MalformedMessageError
from firmware_bridge.ble.protocol.fields import log_id_to_bytes, sha256_to_bytes

__all__ = [
    "RECEIPT_BYTES",
    "ReleaseReceipt",
    "derive_release_key",
    "receipt_mac",
    "upload_digest",
]

RELEASE_KEY_LABEL = b"suit-release-key/2"
UPLOAD_DIGEST_LABEL = b"suit-upload/2"
RECEIPT_LABEL = b"suit-release/2"

# Receipt on the wire: upload digest, then the MAC.
RECEIPT_BYTES = SHA256_BYTES + RECEIPT_MAC_BYTES

_U16 = struct.Struct("<H")


def derive_release_key(gateway_nonce: bytes, suit_nonce: bytes) -> bytes:
    """Return the 32-byte release key both sides derive from the ENROLL nonces."""
    for name, nonce in (("gateway_nonce", gateway_nonce), ("suit_nonce", suit_nonce)):
        if len(nonce) != NONCE_BYTES:
            raise MalformedMessageError(
                "ENROLL", name, f"{NONCE_BYTES} bytes", f"{len(nonce)} bytes"
            )
    return hmac.digest(RELEASE_KEY_LABEL, gateway_nonce + suit_nonce, "sha256")


def _field(text: str, what: str) -> bytes:
    raw = text.encode("utf-8") if isinstance(text, str) else b""
    if not raw or len(raw) > 0xFFFF:
        raise ValueError(f"upload receipt: {what} must be 1..65535 UTF-8 bytes")
    return _U16.pack(len(raw)) + raw


def upload_digest(
    object_keys: Mapping[str, str], object_sha256: Mapping[str, str]
) -> bytes:
    """Return the SHA-256 that names a committed upload (see the module doc).

    Args:
        object_keys: object name -> ``bucket/key`` as committed.
        object_sha256: output name -> SHA-256 (hex) of the bytes uploaded.

    Raises:
        ValueError: no object, an empty name or key, or a bad SHA-256.
    """
    if not object_keys:
        raise ValueError("upload receipt: no committed object key")
    digest = hashlib.sha256(UPLOAD_DIGEST_LABEL)
    for name in sorted(object_keys):
        digest.update(b"K" + _field(name, "object name"))
        digest.update(_field(object_keys[name], f"key of object {name!r}"))
    for name in sorted(object_sha256):
        try:
            sha = sha256_to_bytes("upload receipt", object_sha256[name])
        except MalformedMessageError as error:
            raise ValueError(f"upload receipt: output {name!r}: {error}") from None
        digest.update(b"S" + _field(name, "output name") + sha)
    return digest.digest()


def receipt_mac(
    release_key: bytes, log_id: str, sha256_hex: str, digest: bytes
) -> bytes:
    """Return the MAC that binds ``digest`` to the log under ``release_key``."""
    if len(digest) != SHA256_BYTES:
        raise MalformedMessageError(
            "receipt", "upload_digest", f"{SHA256_BYTES} bytes", f"{len(digest)} bytes"
        )
    message = (
        RECEIPT_LABEL
        + log_id_to_bytes("receipt", log_id)
        + sha256_to_bytes("receipt", sha256_hex)
        + digest
    )
    return hmac.digest(release_key, message, "sha256")


@dataclasses.dataclass(frozen=True, slots=True)
class ReleaseReceipt:
    """Carry the upload digest and its MAC on a RELEASE_LOG command."""

    upload_digest: bytes
    mac: bytes

    @classmethod
    def sign(
        cls, release_key: bytes, log_id: str, sha256_hex: str, digest: bytes
    ) -> ReleaseReceipt:
        """Return the receipt for ``log_id`` with ``sha256_hex`` and ``digest``."""
        return cls(digest, receipt_mac(release_key, log_id, sha256_hex, digest))

    def verify(self, release_key: bytes, log_id: str, sha256_hex: str) -> bool:
        """Return True if the MAC was made with ``release_key`` for this log."""
        expected = receipt_mac(release_key, log_id, sha256_hex, self.upload_digest)
        return hmac.compare_digest(expected, self.mac)

    def encode(self) -> bytes:
        """Return the 64 receipt bytes."""
        if len(self.upload_digest) != SHA256_BYTES or len(self.mac) != (
            RECEIPT_MAC_BYTES
        ):
            raise MalformedMessageError(
                "receipt",
                "length",
                f"{SHA256_BYTES} + {RECEIPT_MAC_BYTES} bytes",
                f"{len(self.upload_digest)} + {len(self.mac)} bytes",
            )
        return self.upload_digest + self.mac

    @classmethod
    def decode(cls, data: bytes | bytearray, offset: int) -> ReleaseReceipt:
        """Parse the receipt that starts at ``offset`` (length checked by caller)."""
        end = offset + SHA256_BYTES
        return cls(bytes(data[offset:end]), bytes(data[end : end + RECEIPT_MAC_BYTES]))
