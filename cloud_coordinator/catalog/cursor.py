"""Opaque keyset cursors for paginated listings.

A cursor names the last row of a page by its sort key (for objects
``(sort_time, object_id)``, for riders ``rider_id``), never by an offset,
so rows inserted while a client pages through a listing neither repeat nor
hide rows it has not seen yet. The cursor also carries the fingerprint of
the query that issued it: a cursor replayed with other filters is refused
instead of silently returning the wrong rows.

Encoding: URL-safe base64 (no padding) of a compact JSON document
``{"v": 1, "f": fingerprint, "k": [key values]}``. It is not signed: it
selects nothing the caller's own filters would not already allow.
"""

from __future__ import annotations

import base64
import binascii
import json

from .errors import InvalidCursor

__all__ = ["CURSOR_VERSION", "MAX_CURSOR_CHARS", "decode_cursor", "encode_cursor"]

CURSOR_VERSION = 1
# A real cursor is under 200 characters; a bound keeps junk out of the parser.
MAX_CURSOR_CHARS = 1024

KeyValue = int | str


def encode_cursor(fingerprint: str, key: tuple[KeyValue, ...]) -> str:
    """Return the cursor that continues after the row with sort key ``key``."""
    document = {"v": CURSOR_VERSION, "f": fingerprint, "k": list(key)}
    raw = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(
    cursor: str, fingerprint: str, types: tuple[type, ...]
) -> tuple[KeyValue, ...]:
    """Return the sort key in ``cursor`` after checking it fits this query.

    ``types`` gives the expected type of each key value (``int`` or ``str``).

    Raises:
        InvalidCursor: malformed, from another cursor version, or issued for
            a query with a different fingerprint.
    """
    if not cursor or len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor(f"cursor: expected 1-{MAX_CURSOR_CHARS} characters")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        document = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise InvalidCursor("cursor: not a cursor issued by this API") from exc
    if not isinstance(document, dict) or document.get("v") != CURSOR_VERSION:
        raise InvalidCursor("cursor: unknown cursor version; start from page one")
    if document.get("f") != fingerprint:
        raise InvalidCursor(
            "cursor: issued for a different query (filters changed); "
            "start from page one"
        )
    key = document.get("k")
    if (
        not isinstance(key, list)
        or len(key) != len(types)
        or not all(
            type(value) is expected for value, expected in zip(key, types, strict=True)
        )
    ):
        raise InvalidCursor("cursor: damaged sort key; start from page one")
    return tuple(key)
