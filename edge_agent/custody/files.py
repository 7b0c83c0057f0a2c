"""The buffer's data files, plaintext or encrypted, behind one interface.

A file's format is fixed when it is created: with a key configured, new raw
logs, imports and outputs are encrypted (:mod:`.crypto`); a plaintext file
written before encryption was turned on keeps being read, and appended to,
as plaintext. Every method speaks in plaintext bytes, so the intake and
recovery rules (durable offsets, SHA-256 of the log) do not change.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from .cryptfile import (
    append_encrypted,
    create_encrypted,
    export_plaintext,
    open_plaintext,
    plaintext_digest,
    write_encrypted,
)
from .crypto import CustodyCipher, is_encrypted, scan_records
from .durable import (
    atomic_copy,
    fsync_dir,
    fsync_file,
    pwrite_durable,
    truncate_durable,
)
from .errors import CustodyStorageError, WrongKeyError

__all__ = ["DataFiles"]


class DataFiles:
    """Create, append, seal, read and copy the buffer's data files."""

    def __init__(self, cipher: CustodyCipher | None) -> None:
        """Encrypt new files with ``cipher``; keep them plaintext when None."""
        self.cipher = cipher
        # Plaintext end -> file end of encrypted files being appended to, so
        # an append does not walk the file's records each time.
        self._tails: dict[Path, tuple[int, int]] = {}
        self._tails_lock = threading.Lock()

    @property
    def encrypting(self) -> bool:
        """Tell whether new files are written encrypted."""
        return self.cipher is not None

    def _need_cipher(self, path: Path) -> CustodyCipher:
        if self.cipher is None:
            raise WrongKeyError(
                f"{path}: encrypted, but no key is configured; set [custody] "
                "key_file to the key the buffer was written with"
            )
        return self.cipher

    def _forget(self, path: Path) -> None:
        with self._tails_lock:
            self._tails.pop(path, None)

    def create_raw(self, path: Path) -> None:
        """Create an empty raw file for a pull (replacing any), durably."""
        self._forget(path)
        if self.cipher is not None:
            create_encrypted(path, self.cipher)
            return
        path.unlink(missing_ok=True)
        path.touch()
        fsync_file(path)
        fsync_dir(path.parent)

    def _cipher_end(self, path: Path, plain_offset: int) -> int:
        with self._tails_lock:
            tail = self._tails.get(path)
        if tail is not None and tail[0] == plain_offset:
            return tail[1]
        extent = scan_records(path, stop_at_plain=plain_offset)
        if extent.plain_bytes != plain_offset or extent.sealed:
            raise CustodyStorageError(
                f"{path}: encrypted records hold {extent.plain_bytes} bytes"
                f"{' and are sealed' if extent.sealed else ''}, expected an open "
                f"file of {plain_offset} bytes; reopen the buffer to recover it"
            )
        return extent.cipher_end

    def append(self, path: Path, plain_offset: int, data: bytes) -> None:
        """Write ``data`` at ``plain_offset`` (the durable end) and fsync it."""
        if not is_encrypted(path):
            pwrite_durable(path, plain_offset, data)
            end = plain_offset + len(data)
            if path.stat().st_size > end:
                truncate_durable(path, end)
            return
        cipher = self._need_cipher(path)
        start = self._cipher_end(path, plain_offset)
        end = append_encrypted(
            path, cipher, cipher_end=start, plain_offset=plain_offset, data=data
        )
        with self._tails_lock:
            self._tails[path] = (plain_offset + len(data), end)

    def seal(self, path: Path, size_bytes: int) -> None:
        """Close a complete encrypted file with its end record (plaintext: no-op)."""
        if not is_encrypted(path):
            return
        cipher = self._need_cipher(path)
        start = self._cipher_end(path, size_bytes)
        append_encrypted(
            path, cipher, cipher_end=start, plain_offset=size_bytes, data=b"", seal=True
        )
        self._forget(path)

    def trim(self, path: Path, durable_bytes: int) -> tuple[int, int]:
        """Cut a file being pulled back to ``durable_bytes`` of plaintext.

        Returns the plaintext bytes found and kept. An encrypted file loses
        any torn record and any end record (it is not complete until the
        index says so).
        """
        self._forget(path)
        if not is_encrypted(path):
            found = path.stat().st_size
            if found > durable_bytes:
                truncate_durable(path, durable_bytes)
            return found, min(found, durable_bytes)
        whole = scan_records(path)
        kept = scan_records(path, stop_at_plain=durable_bytes)
        if path.stat().st_size > kept.cipher_end:
            truncate_durable(path, kept.cipher_end)
        return whole.plain_bytes, kept.plain_bytes

    def digest(
        self, path: Path, *, sealed: bool = True, limit_bytes: int | None = None
    ) -> tuple[int, str]:
        """Return the plaintext size and SHA-256 of ``path``.

        ``sealed`` requires an encrypted file to end with its end record.

        Raises:
            EncryptedDataError: a record fails authentication.
        """
        return plaintext_digest(
            path, self.cipher, require_sealed=sealed, limit_bytes=limit_bytes
        )

    def open(self, path: Path, *, sealed: bool = True) -> BinaryIO:
        """Open a file for reading its plaintext.

        ``sealed`` requires an encrypted file to end with its end record
        (a complete file); without it, a file being pulled reads to its end.
        """
        return open_plaintext(path, self.cipher, require_sealed=sealed)

    def store(self, source: Path, target: Path) -> tuple[int, str]:
        """Copy ``source``'s plaintext into ``target``, encrypted if configured.

        Atomic and durable; returns the plaintext size and SHA-256.
        """
        if self.cipher is None:
            if is_encrypted(source):
                self._need_cipher(source)
            return atomic_copy(source, target)
        with open_plaintext(source, self.cipher) as stream:
            return write_encrypted(stream, target, self.cipher)

    def export(self, path: Path, target: Path) -> tuple[int, str]:
        """Write the plaintext of ``path`` to a new private file ``target``."""
        return export_plaintext(path, target, self.cipher)

    @staticmethod
    def is_encrypted(path: Path) -> bool:
        """Tell whether ``path`` is stored encrypted."""
        return is_encrypted(path)

    def encode_analytics(self, log_id: str, analytics: Mapping[str, Any]) -> str:
        """Return the index text of a log's analytics (sealed when encrypting)."""
        text = json.dumps(dict(analytics))
        if self.cipher is None:
            return text
        return self.cipher.seal_text(text, f"log {log_id} analytics")

    def decode_analytics(self, log_id: str, stored: str | None) -> str | None:
        """Return the analytics JSON text of an index field, opened if sealed.

        Without a key, sealed analytics read as None (a read-only status
        process has no key and needs none).
        """
        if stored is None or not CustodyCipher.is_sealed_text(stored):
            return stored
        if self.cipher is None:
            return None
        return self.cipher.open_text(stored, f"log {log_id} analytics")
