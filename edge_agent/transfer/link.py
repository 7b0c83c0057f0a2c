"""Carry control point commands, replies and data over one connected BleakClient.

Only bleak's public API is used.  This is the one place where bleak errors
become :class:`SuitLinkError` (link down), :class:`SuitNotBondedError` (the
suit wants a bonded, encrypted link) or :class:`SuitCommandError` (the suit
refused a write while the link stayed up), and where protocol errors in
replies become :class:`SuitProtocolError`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakError, BleakGATTProtocolError, BleakGATTProtocolErrorCode

from edge_agent.transfer.errors import (
    SuitCommandError,
    SuitLinkError,
    SuitNotBondedError,
    SuitProtocolError,
)
from firmware_bridge.ble.protocol import (
    ATT_MIN_MTU,
    CONTROL_POINT_UUID,
    DATA_UUID,
    Ack,
    Command,
    Nack,
    ProtocolError,
    Reply,
    ReplyReassembler,
    StreamEnd,
    decode_reply,
)

__all__ = ["SuitLink"]

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

# Bound on one GATT read, write or subscribe.
GATT_OP_TIMEOUT_S = 10.0

# Bound on waiting for a reply: a LIST_LOGS page at MTU 23 is ~170 confirmed
# indications, a few seconds on a slow connection interval.
REPLY_TIMEOUT_S = 20.0

# ATT errors by which a server asks for a bonded, encrypted link.
_NOT_BONDED_CODES = frozenset(
    {
        BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHENTICATION,
        BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION,
        BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION_KEY_SIZE,
    }
)

# BlueZ folds those three into org.bluez.Error.NotPermitted "Not paired"
# (newer releases: org.bluez.Error.NotPaired), which bleak 3.1 passes on
# without a code (see create_gatt_dbus_error in BlueZ's src/gatt-client.c).
_NOT_BONDED_TEXTS = ("Not paired", "Not Paired", "NotPaired")


def _is_not_bonded(error: BleakError) -> bool:
    if isinstance(error, BleakGATTProtocolError):
        return error.code in _NOT_BONDED_CODES
    return any(text in str(error) for text in _NOT_BONDED_TEXTS)


class SuitLink:
    """Send commands and route replies, events and data for one connection."""

    def __init__(self, client: BleakClient, who: str) -> None:
        self.client = client
        self.who = who
        self.disconnected = asyncio.Event()
        self.on_data: Callable[[bytearray], None] | None = None
        self.on_stream_end: Callable[[StreamEnd], None] | None = None
        self.on_disconnect: Callable[[], None] | None = None
        self.stray_chunks = 0
        self._reassembler = ReplyReassembler()
        self._tokens = itertools.cycle(range(1, 256))
        self._command_lock = asyncio.Lock()
        self._pending: (
            tuple[int, asyncio.Future[Reply], Callable[[Reply], None] | None] | None
        ) = None

    async def async_start(self) -> None:
        """Subscribe to the control point and data characteristics."""
        await self._gatt(
            "subscribe", self.client.start_notify(CONTROL_POINT_UUID, self._on_control)
        )
        await self._gatt(
            "subscribe", self.client.start_notify(DATA_UUID, self._on_data)
        )

    def mark_disconnected(self) -> None:
        """Fail the pending command and wake everyone waiting on the link."""
        self.disconnected.set()
        if self.on_disconnect is not None:
            self.on_disconnect()
        if self._pending is not None and not self._pending[1].done():
            self._pending[1].set_exception(SuitLinkError(f"{self.who}: link lost"))

    @property
    def att_mtu(self) -> int:
        """Return the ATT MTU bleak reports now.

        ``mtu_size`` is the portable figure; BlueZ reports 23 there unless the
        MTU was acquired, but its per-characteristic "MTU" property shows up
        as ``max_write_without_response_size + 3``, so the larger is taken.
        """
        mtu = self.client.mtu_size
        characteristic = self.client.services.get_characteristic(DATA_UUID)
        if characteristic is not None:
            mtu = max(mtu, characteristic.max_write_without_response_size + 3)
        return max(mtu, ATT_MIN_MTU)

    async def _gatt(self, what: str, operation: Awaitable[_T]) -> _T:
        """Await one GATT operation with a timeout; map bleak's errors."""
        try:
            async with asyncio.timeout(GATT_OP_TIMEOUT_S):
                return await operation
        except TimeoutError as error:
            raise SuitLinkError(
                f"{self.who}: {what} timed out after {GATT_OP_TIMEOUT_S:.0f} s"
            ) from error
        except BleakError as error:
            if self.client.is_connected and not self.disconnected.is_set():
                if _is_not_bonded(error):
                    raise SuitNotBondedError(
                        f"{self.who}: {what} refused: the suit serves it only on "
                        f"a bonded, encrypted link ({error}); put the suit in "
                        "pairing mode and pair it with this gateway",
                        None,
                    ) from error
                raise SuitCommandError(
                    f"{self.who}: {what} refused by the suit: {error}", None
                ) from error
            raise SuitLinkError(f"{self.who}: {what} failed: {error}") from error

    async def async_read(self, uuid: str) -> bytearray:
        """Read one characteristic."""
        return await self._gatt(f"read {uuid}", self.client.read_gatt_char(uuid))

    async def async_command(
        self,
        make: Callable[[int], Command],
        on_reply: Callable[[Reply], None] | None = None,
    ) -> Reply:
        """Send the command ``make(token)`` and return the suit's reply.

        ``on_reply`` runs inside the notification callback that completes the
        reply, before anything the suit sent after it is handled: READ_LOG
        uses it to be ready for the first data chunk.
        """
        async with self._command_lock:
            if self.disconnected.is_set():
                raise SuitLinkError(f"{self.who}: link lost")
            command = make(next(self._tokens))
            future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
            self._pending = (command.token, future, on_reply)
            try:
                await self._write(command)
                async with asyncio.timeout(REPLY_TIMEOUT_S):
                    return await future
            except TimeoutError as error:
                raise SuitLinkError(
                    f"{self.who}: no reply to {type(command).__name__} within "
                    f"{REPLY_TIMEOUT_S:.0f} s"
                ) from error
            finally:
                self._pending = None
                if not future.done():
                    future.cancel()
                elif not future.cancelled():
                    future.exception()  # retrieved: the write's own error won

    async def async_flow(self, command: Ack | Nack) -> None:
        """Send an ACK or NACK (no reply message; the ATT response suffices)."""
        await self._write(command)

    async def _write(self, command: Command) -> None:
        await self._gatt(
            type(command).__name__,
            self.client.write_gatt_char(
                CONTROL_POINT_UUID, command.encode(), response=True
            ),
        )

    def _on_control(self, _sender: BleakGATTCharacteristic, segment: bytearray) -> None:
        try:
            message = self._reassembler.feed(segment)
            if message is None:
                return
            reply = decode_reply(message)
        except ProtocolError as error:
            _LOGGER.warning("%s: bad reply: %s", self.who, error)
            if self._pending is not None and not self._pending[1].done():
                self._pending[1].set_exception(
                    SuitProtocolError(f"{self.who}: bad reply: {error}")
                )
            return
        if isinstance(reply, StreamEnd):
            if self.on_stream_end is not None:
                self.on_stream_end(reply)
            return
        pending = self._pending
        if pending is None or pending[0] != reply.token or pending[1].done():
            _LOGGER.warning("%s: stale reply dropped: %s", self.who, reply)
            return
        _token, future, on_reply = pending
        if on_reply is not None:
            on_reply(reply)
        future.set_result(reply)

    def _on_data(self, _sender: BleakGATTCharacteristic, frame: bytearray) -> None:
        if self.on_data is None:
            self.stray_chunks += 1
            return
        self.on_data(frame)
