"""Read and write files in the encrypted record format of :mod:`.crypto`.

Writers follow the custody durability rule of :mod:`.durable`: data is
fsynced before the caller records anything that relies on it, and whole
files are written under a temporary name and renamed. Readers authenticate
every record before handing out a byte of it.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import BinaryIO

from .crypto import (
    FILE_HEADER,
    KIND_END,
    RECORD_HEADER,
    RECORD_PLAIN_BYTES,
    TAG_BYTES,
    CustodyCipher,
    is_encrypted,
    parse_header,
)
from .durable import COPY_CHUNK_BYTES, atomic_write_bytes, fsync_dir, temp_path_for
from .errors import EncryptedDataError, WrongKeyError

__all__ = [
    "append_encrypted",
    "create_encrypted",
    "export_plaintext",
    "open_plaintext",
    "plaintext_digest",
    "write_encrypted",
]


def create_encrypted(path: Path, cipher: CustodyCipher) -> None:
    """Create (or replace) ``path`` as an empty, unsealed encrypted file, durably."""
    atomic_write_bytes(path, cipher.new_header())


def append_encrypted(
    path: Path,
    cipher: CustodyCipher,
    *,
    cipher_end: int,
    plain_offset: int,
    data: bytes,
    seal: bool = False,
) -> int:
    """Write ``data`` as records at file position ``cipher_end`` and fsync.

    Anything after ``cipher_end`` (a torn earlier attempt) is cut off.
    Returns the new end of the records.
    """
    fd = os.open(path, os.O_RDWR)
    try:
        header = parse_header(os.pread(fd, FILE_HEADER.size, 0), str(path))
        blob = cipher.encode(header, plain_offset, data, seal=seal, source=str(path))
        view = memoryview(blob)
        position = cipher_end
        while view:
            written = os.pwrite(fd, view, position)
            view = view[written:]
            position += written
        if os.fstat(fd).st_size > position:
            os.ftruncate(fd, position)
        os.fsync(fd)
    finally:
        os.close(fd)
    return position


class _DecryptingStream(io.RawIOBase):
    """Plaintext of an encrypted file, one authenticated record at a time."""

    def __init__(
        self, path: Path, cipher: CustodyCipher, *, require_sealed: bool
    ) -> None:
        super().__init__()
        self._source = str(path)
        self._file = open(path, "rb")  # noqa: SIM115 (closed in close())
        try:
            self._header = parse_header(self._file.read(FILE_HEADER.size), self._source)
            cipher.check_key(self._header, self._source)
        except BaseException:
            self._file.close()
            raise
        self._cipher = cipher
        self._require_sealed = require_sealed
        self._plain_offset = 0
        self._pending = memoryview(b"")
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._done:
            self._next_record()
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def _fail(self, position: int, what: str) -> EncryptedDataError:
        return EncryptedDataError(
            f"{self._source}: byte {position} (plaintext offset "
            f"{self._plain_offset}): {what}"
        )

    def _next_record(self) -> None:
        position = self._file.tell()
        head = self._file.read(RECORD_HEADER.size)
        if not head:
            if self._require_sealed:
                raise self._fail(
                    position, "file ends without its end record (truncated)"
                )
            self._done = True
            return
        if len(head) < RECORD_HEADER.size:
            raise self._fail(position, f"torn record header ({len(head)} bytes)")
        plain_len = RECORD_HEADER.unpack(head)[0]
        if plain_len > self._header.record_plain_bytes:
            raise self._fail(
                position,
                f"record length {plain_len} exceeds {self._header.record_plain_bytes}",
            )
        body = self._file.read(plain_len + TAG_BYTES)
        if len(body) < plain_len + TAG_BYTES:
            raise self._fail(position, "torn record (file cut inside it)")
        kind, plain = self._cipher.decode(
            self._header,
            self._plain_offset,
            head,
            body,
            source=self._source,
            position=position,
        )
        if kind == KIND_END:
            if self._file.read(1):
                raise self._fail(self._file.tell() - 1, "data after the end record")
            self._done = True
            return
        self._plain_offset += len(plain)
        self._pending = memoryview(plain)

    def close(self) -> None:
        self._file.close()
        super().close()


def open_plaintext(
    path: Path, cipher: CustodyCipher | None, *, require_sealed: bool = True
) -> BinaryIO:
    """Open ``path`` for reading plaintext, decrypting it when it is encrypted.

    A plaintext file (written before encryption was turned on) opens as is.
    With ``require_sealed``, reading an encrypted file that lacks its end
    record raises at the end instead of returning a short file.

    Raises:
        WrongKeyError: the file is encrypted and no key, or another key, is
            configured.
        EncryptedDataError: (while reading) a record fails authentication.
    """
    path = Path(path)
    if not is_encrypted(path):
        return open(path, "rb")
    if cipher is None:
        raise WrongKeyError(
            f"{path}: encrypted, but no key is configured; set [custody] key_file "
            "to the key the buffer was written with"
        )
    raw = _DecryptingStream(path, cipher, require_sealed=require_sealed)
    return io.BufferedReader(raw, buffer_size=RECORD_PLAIN_BYTES)


def plaintext_digest(
    path: Path,
    cipher: CustodyCipher | None,
    *,
    require_sealed: bool = True,
    limit_bytes: int | None = None,
) -> tuple[int, str]:
    """Return the plaintext size and SHA-256 (hex) of a (maybe encrypted) file."""
    digest = hashlib.sha256()
    size_bytes = 0
    with open_plaintext(path, cipher, require_sealed=require_sealed) as stream:
        while True:
            want = COPY_CHUNK_BYTES
            if limit_bytes is not None:
                want = min(want, limit_bytes - size_bytes)
            chunk = stream.read(want) if want > 0 else b""
            if not chunk:
                break
            digest.update(chunk)
            size_bytes += len(chunk)
    return size_bytes, digest.hexdigest()


def write_encrypted(
    source: BinaryIO, target: Path, cipher: CustodyCipher
) -> tuple[int, str]:
    """Encrypt ``source`` into ``target`` (sealed), atomically and durably.

    Returns the plaintext size and SHA-256 (hex).
    """
    tmp = temp_path_for(target)
    header = parse_header(cipher.new_header(), str(target))
    digest = hashlib.sha256()
    plain = 0
    try:
        with open(tmp, "wb") as sink:
            sink.write(header.raw)
            while chunk := source.read(COPY_CHUNK_BYTES):
                digest.update(chunk)
                sink.write(
                    cipher.encode(header, plain, chunk, seal=False, source=str(target))
                )
                plain += len(chunk)
            sink.write(cipher.encode(header, plain, b"", seal=True, source=str(target)))
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    return plain, digest.hexdigest()


def export_plaintext(
    source: Path, target: Path, cipher: CustodyCipher | None
) -> tuple[int, str]:
    """Write the plaintext of ``source`` to a new file ``target`` (mode 0600).

    Returns the plaintext size and SHA-256 (hex). ``target`` is a working
    copy: it is not fsynced.
    """
    digest = hashlib.sha256()
    size_bytes = 0
    with open_plaintext(source, cipher) as stream:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as sink:
            while chunk := stream.read(COPY_CHUNK_BYTES):
                digest.update(chunk)
                sink.write(chunk)
                size_bytes += len(chunk)
    return size_bytes, digest.hexdigest()
