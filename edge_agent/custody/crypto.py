"""Encryption at rest of custody files: AES-256-GCM in authenticated records.

Threat model
------------
The asset is the gateway's flash: a stolen or returned gateway, or a flash
chip read out, must not yield ride data. Log bytes pulled from suits,
imported archives, and processing outputs waiting for upload (CSV, analytics
JSON) are therefore encrypted under a 256-bit key from a key file, and so is
the ride analytics summary the index keeps per log. What this does *not*
cover, by design:

* the key file itself. If it sits unprotected on the same flash, the thief
  takes it too; keep it where the flash is not (a TPM-sealed blob unsealed
  at boot into a tmpfs file, a secure element, a removable medium);
* plaintext working copies: processing and upload read files by path, so
  the buffer decrypts into a private working folder (mode 0700) for the
  duration of one step (see :mod:`~edge_agent.custody.workspace`). Put that
  folder on tmpfs (``[custody] work_dir``) or flash keeps deleted plaintext
  blocks until they are reused;
* an attacker with root on the running gateway (reads the key and memory);
* metadata in the index: log ids, suit serials, rider ids, sizes, states,
  SHA-256 digests of the plaintext, object keys.

Integrity comes with the encryption: every record is authenticated, so a
flipped bit, a swapped, reordered, dropped or truncated record, or a file
sealed under another key is reported (:class:`EncryptedDataError`,
:class:`WrongKeyError`) instead of being processed or uploaded.

File format (all integers little-endian)
----------------------------------------
::

    header   magic "SLCUSTD1" | version u16 | flags u16 | record_plain u32
             | key_id 8 bytes | salt 24 bytes                     (48 bytes)
    record   plain_len u32 | kind u8 | 3 zero bytes | nonce 12 bytes
             | ciphertext (plain_len bytes) | GCM tag 16 bytes
    ...
    end      a record of kind 1 with plain_len 0 (a sealed file)

Each file gets its own AES-256 key, derived with HKDF-SHA256 from the master
key and the file's random salt, so nonce budgets are per file. A record's
nonce is random, not a counter: after a crash, recovery cuts a file back to
its last durable record and the next append writes that position again,
possibly with other bytes; a counter would then repeat a nonce. The
associated data of a record is the file header, the record's plaintext byte
offset, its length and its kind. The offset is the record's position in the
file (a segment index that still holds after variable-length appends), so a
record moved, dropped or duplicated fails authentication; the end record
carries the total length, so a sealed file cut short is detected. A file
being pulled is not sealed yet; its length is checked against the index's
durable offset instead.

Records hold at most ``RECORD_PLAIN_BYTES`` of plaintext; appends never
rewrite earlier records, which keeps an append crash-safe exactly like a
plaintext append (write, fsync, then commit the offset).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import EncryptedDataError, WrongKeyError
from .keyfile import KEY_BYTES, read_key_file

__all__ = [
    "FILE_HEADER",
    "MAGIC",
    "RECORD_HEADER",
    "RECORD_PLAIN_BYTES",
    "TAG_BYTES",
    "CustodyCipher",
    "Extent",
    "FileHeader",
    "is_encrypted",
    "parse_header",
    "scan_records",
]

MAGIC = b"SLCUSTD1"
FORMAT_VERSION = 1
# 64 KiB of plaintext per record: the BLE puller hands over 64 KiB batches,
# so a batch is one or two records, and the 36-byte overhead stays < 0.1 %.
RECORD_PLAIN_BYTES = 64 * 1024
FILE_HEADER = struct.Struct("<8sHHI8s24s")
RECORD_HEADER = struct.Struct("<IB3x12s")
_RECORD_AAD = struct.Struct("<QIB")
TAG_BYTES = 16
NONCE_BYTES = 12
SALT_BYTES = 24
KEY_ID_BYTES = 8
KIND_DATA = 0
KIND_END = 1
# Records larger than this in a header are garbage, whatever the writer's
# setting was: refuse them before allocating.
_MAX_RECORD_PLAIN_BYTES = 16 * 1024 * 1024
# Per-file AES objects kept for appends to files being pulled.
_AEAD_CACHE_ENTRIES = 64

_KEY_ID_INFO = b"suitlink custody key id v1"
_FILE_KEY_INFO = b"suitlink custody file key v1"
_FIELD_KEY_INFO = b"suitlink custody index field key v1"
_FIELD_PREFIX = "enc1:"


def _hkdf(key: bytes, *, salt: bytes | None, info: bytes, length: int) -> bytes:
    return HKDF(hashes.SHA256(), length, salt, info).derive(key)


@dataclass(frozen=True)
class FileHeader:
    """The parsed header of an encrypted file."""

    raw: bytes
    key_id: bytes
    salt: bytes
    record_plain_bytes: int


@dataclass(frozen=True)
class Extent:
    """What a header-only walk over an encrypted file found.

    ``plain_bytes`` is the plaintext held by complete records before
    ``cipher_end`` (the file position after them); ``sealed`` tells whether an
    end record closes the file; ``trailing_bytes`` counts bytes after the
    last complete record (a torn append) or after the end record.
    """

    plain_bytes: int
    cipher_end: int
    sealed: bool
    trailing_bytes: int


def is_encrypted(path: Path) -> bool:
    """Tell whether ``path`` starts with the encrypted-file magic."""
    try:
        with open(path, "rb") as stream:
            return stream.read(len(MAGIC)) == MAGIC
    except FileNotFoundError:
        return False


def parse_header(raw: bytes, source: str) -> FileHeader:
    """Parse and check an encrypted file's header.

    Raises:
        EncryptedDataError: wrong magic, version or record size.
    """
    if len(raw) < FILE_HEADER.size:
        raise EncryptedDataError(
            f"{source}: encrypted header truncated, expected {FILE_HEADER.size} "
            f"bytes, found {len(raw)}"
        )
    magic, version, _flags, record_plain, key_id, salt = FILE_HEADER.unpack(
        raw[: FILE_HEADER.size]
    )
    if magic != MAGIC:
        raise EncryptedDataError(
            f"{source}: offset 0: expected magic {MAGIC!r}, found {magic!r}"
        )
    if version != FORMAT_VERSION:
        raise EncryptedDataError(
            f"{source}: offset 8: format version {version}, this agent reads "
            f"{FORMAT_VERSION}"
        )
    if not 0 < record_plain <= _MAX_RECORD_PLAIN_BYTES:
        raise EncryptedDataError(
            f"{source}: offset 12: record size {record_plain} outside "
            f"1..{_MAX_RECORD_PLAIN_BYTES}"
        )
    return FileHeader(raw[: FILE_HEADER.size], key_id, salt, record_plain)


def scan_records(path: Path, *, stop_at_plain: int | None = None) -> Extent:
    """Walk an encrypted file's record headers (no key needed, nothing decrypted).

    Stops at the end record, at the first torn or implausible record, or
    at the last record boundary within ``stop_at_plain`` bytes of plaintext.

    Raises:
        EncryptedDataError: the file header is not valid.
    """
    size_bytes = path.stat().st_size
    with open(path, "rb") as stream:
        header = parse_header(stream.read(FILE_HEADER.size), str(path))
        position, plain = FILE_HEADER.size, 0
        sealed = False
        while stop_at_plain is None or plain < stop_at_plain:
            head = stream.read(RECORD_HEADER.size)
            if len(head) < RECORD_HEADER.size:
                break
            plain_len, kind, _nonce = RECORD_HEADER.unpack(head)
            end = position + RECORD_HEADER.size + plain_len + TAG_BYTES
            if plain_len > header.record_plain_bytes or end > size_bytes:
                break
            if kind == KIND_END and plain_len == 0:
                position, sealed = end, True
                break
            if kind != KIND_DATA or plain_len == 0:
                break
            if stop_at_plain is not None and plain + plain_len > stop_at_plain:
                break  # a record across the limit: keep only whole records
            position, plain = end, plain + plain_len
            stream.seek(position)
    return Extent(plain, position, sealed, size_bytes - position)


class CustodyCipher:
    """The buffer's master key and the record encryption built on it."""

    def __init__(self, key: bytes, *, source: str = "<key>") -> None:
        """Use ``key`` (32 bytes); ``source`` names it in error messages."""
        if len(key) != KEY_BYTES:
            raise ValueError(f"{source}: expected a {KEY_BYTES}-byte key")
        self._key = key
        self.source = source
        self.key_id = _hkdf(key, salt=None, info=_KEY_ID_INFO, length=KEY_ID_BYTES)
        self._field_aead = AESGCM(
            _hkdf(key, salt=None, info=_FIELD_KEY_INFO, length=KEY_BYTES)
        )
        self._file_aeads: dict[bytes, AESGCM] = {}

    @classmethod
    def from_key_file(cls, path: Path) -> CustodyCipher:
        """Load the key from ``path`` (see :func:`read_key_file` for the rules)."""
        return cls(read_key_file(Path(path)), source=f"key file {path}")

    @property
    def key_id_hex(self) -> str:
        """Return the key's public fingerprint (hex), as stored in file headers."""
        return self.key_id.hex()

    def new_header(self) -> bytes:
        """Return a fresh file header (random salt) for this key."""
        salt = os.urandom(SALT_BYTES)
        return FILE_HEADER.pack(
            MAGIC, FORMAT_VERSION, 0, RECORD_PLAIN_BYTES, self.key_id, salt
        )

    def _aead(self, header: FileHeader, source: str) -> AESGCM:
        if header.key_id != self.key_id:
            raise WrongKeyError(
                f"{source}: encrypted under key id {header.key_id.hex()}, but "
                f"{self.source} has key id {self.key_id_hex}; configure the key "
                "the file was written with"
            )
        aead = self._file_aeads.get(header.salt)
        if aead is None:
            if len(self._file_aeads) >= _AEAD_CACHE_ENTRIES:
                self._file_aeads.clear()
            file_key = _hkdf(
                self._key, salt=header.salt, info=_FILE_KEY_INFO, length=KEY_BYTES
            )
            aead = self._file_aeads[header.salt] = AESGCM(file_key)
        return aead

    def check_key(self, header: FileHeader, source: str) -> None:
        """Raise WrongKeyError unless ``header`` names this key."""
        self._aead(header, source)

    def encode(
        self,
        header: FileHeader,
        plain_offset: int,
        data: bytes,
        *,
        seal: bool,
        source: str,
    ) -> bytes:
        """Return the records holding ``data`` at ``plain_offset`` (+ end record)."""
        aead = self._aead(header, source)
        pieces = []
        view = memoryview(data)
        offset = plain_offset
        step = header.record_plain_bytes
        for start in range(0, len(view), step):
            chunk = bytes(view[start : start + step])
            pieces.append(self._record(aead, header, offset, chunk, KIND_DATA))
            offset += len(chunk)
        if seal:
            pieces.append(self._record(aead, header, offset, b"", KIND_END))
        return b"".join(pieces)

    @staticmethod
    def _record(
        aead: AESGCM, header: FileHeader, offset: int, chunk: bytes, kind: int
    ) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        aad = header.raw + _RECORD_AAD.pack(offset, len(chunk), kind)
        return RECORD_HEADER.pack(len(chunk), kind, nonce) + aead.encrypt(
            nonce, chunk, aad
        )

    def decode(
        self,
        header: FileHeader,
        plain_offset: int,
        record_head: bytes,
        body: bytes,
        *,
        source: str,
        position: int,
    ) -> tuple[int, bytes]:
        """Authenticate and decrypt one record; return its kind and plaintext.

        Raises:
            EncryptedDataError: the record fails authentication.
        """
        plain_len, kind, nonce = RECORD_HEADER.unpack(record_head)
        aad = header.raw + _RECORD_AAD.pack(plain_offset, plain_len, kind)
        try:
            plain = self._aead(header, source).decrypt(nonce, body, aad)
        except InvalidTag as exc:
            raise EncryptedDataError(
                f"{source}: record at byte {position} (plaintext offset "
                f"{plain_offset}, {plain_len} bytes) fails authentication: "
                "damaged, tampered with, or moved"
            ) from exc
        return kind, plain

    def seal_text(self, text: str, context: str) -> str:
        """Encrypt a short text (an index field) bound to ``context``."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._field_aead.encrypt(nonce, text.encode(), context.encode())
        return _FIELD_PREFIX + (nonce + sealed).hex()

    def open_text(self, token: str, context: str) -> str:
        """Decrypt a text written by :meth:`seal_text` for ``context``.

        Raises:
            EncryptedDataError: the text was altered or belongs elsewhere.
        """
        blob = bytes.fromhex(token.removeprefix(_FIELD_PREFIX))
        try:
            plain = self._field_aead.decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], context.encode()
            )
        except InvalidTag as exc:
            raise EncryptedDataError(
                f"custody index: field of {context} fails authentication "
                f"(altered, or sealed under another key than {self.source})"
            ) from exc
        return plain.decode()

    @staticmethod
    def is_sealed_text(value: str) -> bool:
        """Tell whether an index field holds text sealed by :meth:`seal_text`."""
        return value.startswith(_FIELD_PREFIX)
