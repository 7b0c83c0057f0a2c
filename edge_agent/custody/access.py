"""Plaintext access to a log's files for processing and upload.

Processing opens a raw log by path and the uploader reads outputs by path,
so these methods hand out paths: the stored files themselves when they are
plaintext, private working copies (:mod:`.workspace`) when they are
encrypted. See :mod:`.crypto` for the threat model.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .core import BufferCore
from .errors import EncryptedDataError, InvalidTransitionError
from .intake import check_log_id
from .record import LogRecord

__all__ = ["PlaintextAccess"]


class PlaintextAccess(BufferCore):
    """Read a log's raw bytes and outputs as plaintext, encrypted or not."""

    def _raw_of(self, log_id: str) -> tuple[LogRecord, Path]:
        record = self.get(log_id)
        if record.raw_path is None:
            raise InvalidTransitionError(log_id, record.state.value, "read raw bytes")
        return record, record.raw_path

    def open_raw(self, log_id: str) -> BinaryIO:
        """Open a complete log's raw bytes for streaming plaintext reads.

        Raises:
            InvalidTransitionError: the buffer holds no raw bytes of the log.
            EncryptedDataError: (while reading) a record fails authentication.
        """
        return self._files.open(self._raw_of(log_id)[1])

    @contextlib.contextmanager
    def readable_raw(self, log_id: str) -> Iterator[Path]:
        """Yield a path to the log's raw bytes in plaintext, for one step.

        Without encryption this is the stored file itself. With it, a
        private plaintext copy is made in the work folder, checked against
        the log's SHA-256, and removed when the block ends.

        Raises:
            InvalidTransitionError: the buffer holds no raw bytes of the log.
            EncryptedDataError: the stored bytes fail authentication or do
                not hash to the log's SHA-256 (WrongKeyError: other key).
        """
        record, raw = self._raw_of(log_id)
        if not self._files.is_encrypted(raw):
            yield raw
            return
        with self._workspace.scratch(f"raw-{log_id}") as folder:
            copy = folder / raw.name
            _size, found = self._files.export(raw, copy)
            if found != record.sha256_hex:
                raise EncryptedDataError(
                    f"{raw}: plaintext SHA-256 {found} differs from the log's "
                    f"{record.sha256_hex}"
                )
            yield copy

    @contextlib.contextmanager
    def processing_dir(self, log_id: str) -> Iterator[Path]:
        """Yield the folder processing writes a log's outputs into.

        Without encryption this is :meth:`output_dir`. With it, a private
        scratch folder removed when the block ends: call
        :meth:`mark_processed` inside the block, it stores encrypted copies.
        """
        if not self._files.encrypting:
            yield self.output_dir(log_id)
            return
        check_log_id(log_id)
        with self._workspace.scratch(f"out-{log_id}") as folder:
            yield folder

    @contextlib.contextmanager
    def readable_outputs(self, log_id: str) -> Iterator[LogRecord]:
        """Yield the log's record with its outputs readable as plaintext paths.

        Encrypted outputs are copied, in plaintext, into a private scratch
        folder removed when the block ends (same file names, so content
        types stay right); plaintext outputs are passed through.

        Raises:
            EncryptedDataError: an output fails authentication.
        """
        record = self.get(log_id)
        readable: dict[str, Path] = {}
        with contextlib.ExitStack() as stack:
            folder: Path | None = None
            for name, path in record.outputs.items():
                if not self._files.is_encrypted(path):
                    readable[name] = path
                    continue
                if folder is None:
                    folder = stack.enter_context(
                        self._workspace.scratch(f"upload-{log_id}")
                    )
                (folder / name).mkdir(mode=0o700)
                readable[name] = folder / name / path.name
                self._files.export(path, readable[name])
            yield dataclasses.replace(record, outputs=readable)
