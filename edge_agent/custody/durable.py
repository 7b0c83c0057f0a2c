"""Write files so that they survive a crash or a power cut.

The custody rule is that a file is written and fsynced, and its directory
fsynced after a create or rename, *before* the index records a state that
depends on it. These helpers are the only places that touch file durability,
so the rule is kept in one module. Temporary files are named
``.<name>.<random>.tmp`` beside their target, which keeps a rename atomic
(same directory, same file system) and lets start-up recovery find leftovers.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import shutil
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "COPY_CHUNK_BYTES",
    "TEMP_SUFFIX",
    "atomic_copy",
    "atomic_write_bytes",
    "durable_move",
    "fsync_dir",
    "fsync_file",
    "is_temp_file",
    "pwrite_durable",
    "sha256_file",
    "temp_path_for",
    "truncate_durable",
]

# 1 MiB reads: large enough to keep hashing CPU-bound on flash, small enough
# for a 1 GB gateway running several pipelines at once.
COPY_CHUNK_BYTES = 1024 * 1024
TEMP_SUFFIX = ".tmp"


def fsync_file(path: Path) -> None:
    """Flush a file's data and metadata to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a directory so that creates, renames and unlinks in it persist."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path_for(target: Path) -> Path:
    """Return a fresh temporary path beside ``target``."""
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")


def is_temp_file(path: Path) -> bool:
    """Tell whether ``path`` is a leftover temporary file of these helpers."""
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data`` atomically and durably."""
    tmp = temp_path_for(target)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def _copy_stream(src: BinaryIO, dst: BinaryIO) -> tuple[int, str]:
    digest = hashlib.sha256()
    size_bytes = 0
    while chunk := src.read(COPY_CHUNK_BYTES):
        digest.update(chunk)
        dst.write(chunk)
        size_bytes += len(chunk)
    return size_bytes, digest.hexdigest()


def atomic_copy(source: Path, target: Path) -> tuple[int, str]:
    """Copy ``source`` to ``target`` atomically and durably.

    Returns the size in bytes and the SHA-256 (hex) of what was copied.
    """
    tmp = temp_path_for(target)
    try:
        with open(source, "rb") as src, open(tmp, "wb") as dst:
            size_bytes, sha256_hex = _copy_stream(src, dst)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    return size_bytes, sha256_hex


def durable_move(source: Path, target: Path) -> None:
    """Move a file or directory and make both directory entries durable.

    A rename is used when both paths share a file system; otherwise the data
    is copied, fsynced, and only then is the source removed.
    """
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        if source.is_dir():
            shutil.copytree(source, target)
            for path in target.rglob("*"):
                if path.is_file():
                    fsync_file(path)
            shutil.rmtree(source)
        else:
            atomic_copy(source, target)
            source.unlink()
    fsync_dir(target.parent)
    fsync_dir(source.parent)


def pwrite_durable(path: Path, offset: int, data: bytes) -> None:
    """Write ``data`` at ``offset`` of an existing file and fsync it."""
    fd = os.open(path, os.O_WRONLY)
    try:
        view = memoryview(data)
        position = offset
        while view:
            written = os.pwrite(fd, view, position)
            view = view[written:]
            position += written
        os.fsync(fd)
    finally:
        os.close(fd)


def truncate_durable(path: Path, size_bytes: int) -> None:
    """Cut a file back to ``size_bytes`` and fsync it."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size_bytes)
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path, limit_bytes: int | None = None) -> str:
    """Return the SHA-256 (hex) of a file, or of its first ``limit_bytes``."""
    digest = hashlib.sha256()
    remaining = limit_bytes
    with open(path, "rb") as fh:
        while True:
            want = (
                COPY_CHUNK_BYTES
                if remaining is None
                else min(COPY_CHUNK_BYTES, remaining)
            )
            if want == 0:
                break
            chunk = fh.read(want)
            if not chunk:
                break
            digest.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
    return digest.hexdigest()
