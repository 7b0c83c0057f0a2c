"""The custody encryption key: read from a key file only its owner can read.

A key file holds one 256-bit key, either as 32 raw bytes or as 64 hex digits
(a trailing newline is allowed), so ``head -c 32 /dev/urandom`` and a
configuration-management template both work. :func:`generate_key_file`
writes a fresh one with mode 0600.

A key file that group or others may read, write or execute is refused: on a
gateway whose flash is the asset to protect, a key any local account can read
is no key. The error names the file and its mode so the operator can run
``chmod 600`` on it.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from .errors import KeyFileError

__all__ = ["KEY_BYTES", "generate_key_file", "read_key_file"]

_LOGGER = logging.getLogger(__name__)

# AES-256: the key size the design asks for and what every ARMv8 crypto
# extension accelerates.
KEY_BYTES = 32
# Permission bits a key file must not have: any access by group or others.
_FORBIDDEN_MODE_BITS = stat.S_IRWXG | stat.S_IRWXO
# A key file is a few dozen bytes; reading more means the path is wrong.
_MAX_KEY_FILE_BYTES = 4096


def read_key_file(path: Path) -> bytes:
    """Return the 32-byte key stored in ``path``.

    Raises:
        KeyFileError: the file is missing, not a regular file, readable by
            group or others, or holds neither 32 raw bytes nor 64 hex digits.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError as exc:
        raise KeyFileError(
            f"key file {path}: not found; create one with "
            "`head -c 32 /dev/urandom > FILE && chmod 600 FILE`"
        ) from exc
    except OSError as exc:
        raise KeyFileError(f"key file {path}: cannot open ({exc})") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"key file {path}: not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & _FORBIDDEN_MODE_BITS:
            raise KeyFileError(
                f"key file {path}: mode {mode:04o} lets group or others access "
                f"it; expected 0600 or stricter (run `chmod 600 {path}`)"
            )
        content = os.read(fd, _MAX_KEY_FILE_BYTES + 1)
    finally:
        os.close(fd)
    return _parse_key(path, content)


def _parse_key(path: Path, content: bytes) -> bytes:
    if len(content) == KEY_BYTES:
        return content
    text = content.strip()
    if len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    raise KeyFileError(
        f"key file {path}: expected {KEY_BYTES} raw bytes or {2 * KEY_BYTES} hex "
        f"digits, found {len(content)} bytes"
    )


def generate_key_file(path: Path) -> Path:
    """Write a new random key to ``path`` (mode 0600, hex); never overwrite.

    Raises:
        KeyFileError: ``path`` already exists.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(
            f"key file {path}: already exists; a new key would make the data "
            "encrypted under the old one unreadable"
        ) from exc
    try:
        os.write(fd, (secrets.token_bytes(KEY_BYTES).hex() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    _LOGGER.info("custody key written to %s (mode 0600)", path)
    return path
