"""Split replies into indication segments and put them back together.

A reply can be longer than one indication (ATT_MTU - 3 bytes; 20 bytes at the
default MTU), so each indication carries one segment::

    0   u8   flags    bit 7 FIRST, bit 6 LAST, bits 0..5 counter
                      (0 on the FIRST segment, +1 modulo 64 on each next one)
    1   ...  fragment of the reply, 0 .. ATT_MTU - 4 bytes

Indications are confirmed by ATT, so segments are never lost on a healthy
link; the counter still catches a firmware bug or a stale half-sent reply
from before a reconnect.
"""

from __future__ import annotations

from firmware_bridge.ble.protocol.constants import (
    ATT_MIN_MTU,
    ATT_NOTIFY_HEADER_BYTES,
    MAX_REPLY_BYTES,
    SEGMENT_HEADER_BYTES,
)
from firmware_bridge.ble.protocol.errors import (
    MalformedMessageError,
    SegmentationError,
)

__all__ = ["ReplyReassembler", "segment_message"]

FIRST_FLAG = 0x80
LAST_FLAG = 0x40
_COUNTER_MASK = 0x3F
_MESSAGE = "reply segment"


def segment_message(message: bytes, att_mtu: int) -> list[bytes]:
    """Return the indication values that carry ``message`` at ``att_mtu``."""
    if len(message) > MAX_REPLY_BYTES:
        raise MalformedMessageError(
            "reply", "length", f"<= {MAX_REPLY_BYTES} bytes", len(message)
        )
    room = max(att_mtu, ATT_MIN_MTU) - ATT_NOTIFY_HEADER_BYTES - SEGMENT_HEADER_BYTES
    parts = [message[at : at + room] for at in range(0, len(message), room)]
    parts = parts or [b""]
    segments = []
    for index, part in enumerate(parts):
        flags = index & _COUNTER_MASK
        if index == 0:
            flags |= FIRST_FLAG
        if index == len(parts) - 1:
            flags |= LAST_FLAG
        segments.append(bytes([flags]) + part)
    return segments


class ReplyReassembler:
    """Collect segments and hand back each complete reply once."""

    def __init__(self, max_bytes: int = MAX_REPLY_BYTES) -> None:
        self._max_bytes = max_bytes
        self._buffer = bytearray()
        self._next_counter = 0
        self._active = False

    def reset(self) -> None:
        """Drop any half-received reply (after a reconnect, say)."""
        self._buffer.clear()
        self._next_counter = 0
        self._active = False

    def feed(self, segment: bytes | bytearray) -> bytes | None:
        """Add one segment; return the reply when its LAST segment arrives."""
        if len(segment) < SEGMENT_HEADER_BYTES:
            raise SegmentationError(_MESSAGE, "length", ">= 1 byte", "0 bytes", 0)
        flags = segment[0]
        counter = flags & _COUNTER_MASK
        if flags & FIRST_FLAG:
            self.reset()
            self._active = True
        elif not self._active:
            self.reset()
            raise SegmentationError(
                _MESSAGE, "flags", "FIRST bit on a new reply", f"0x{flags:02x}", 0
            )
        if counter != self._next_counter & _COUNTER_MASK:
            expected = self._next_counter & _COUNTER_MASK
            self.reset()
            raise SegmentationError(_MESSAGE, "counter", expected, counter, 0)
        if len(self._buffer) + len(segment) - 1 > self._max_bytes:
            self.reset()
            raise SegmentationError(
                _MESSAGE,
                "length",
                f"reply <= {self._max_bytes} bytes",
                "more",
                1,
            )
        self._buffer += segment[1:]
        self._next_counter += 1
        if flags & LAST_FLAG:
            message = bytes(self._buffer)
            self.reset()
            return message
        return None
