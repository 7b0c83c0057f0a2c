"""Serve the transfer protocol on one connection of the emulated suit.

Commands arrive as control point writes.  ACK and NACK act at once inside the
write (so the window opens while the stream runs); the other commands queue
for a worker task that sends their reply as segmented indications.  A stream
task sends data notifications back-to-back while the window allows, yields
to the event loop every few chunks, and sends STREAM_END after the last new
chunk.  Replies and STREAM_END share one lock so their segments never mix.
Every command first passes the suit's :class:`~.security.SuitGuard`, which
refuses it at the ATT layer when the link is not bonded enough.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable

from bumble.att import ATT_Error
from bumble.device import Connection, Device
from bumble.gatt import Characteristic

from firmware_bridge.ble.aio import async_cancel_and_wait
from firmware_bridge.ble.protocol import (
    ATT_APP_ERROR_BASE,
    Abort,
    AbortReply,
    Ack,
    Command,
    Enroll,
    EnrollReply,
    ErrorReply,
    ListLogs,
    ListLogsReply,
    LogEntryRecord,
    Nack,
    Opcode,
    ProtocolError,
    ReadLog,
    ReadLogReply,
    ReleaseLog,
    ReleaseLogReply,
    Reply,
    ResultCode,
    StreamEnd,
    UnknownOpcodeError,
    chunk_payload_for_mtu,
    decode_command,
    encode_chunk,
    segment_message,
    unwrap_seq,
)
from firmware_bridge.ble.suit.faults import StreamRecord, SuitFaults, SuitStats
from firmware_bridge.ble.suit.security import SuitGuard
from firmware_bridge.ble.suit.store import ReleaseEvidence, SuitLogStore
from firmware_bridge.ble.suit.stream import SuitStream

__all__ = ["SuitConnection", "SuitContext"]

_LOGGER = logging.getLogger(__name__)

# Yield to the event loop after this many notifications so the gateway (in
# the same process) consumes them while the suit keeps streaming; no sleep.
YIELD_EVERY_CHUNKS = 8

# A stream the gateway neither ACKs nor NACKs for this long is abandoned.
STREAM_IDLE_TIMEOUT_S = 30.0

# Bound on flushing queued notifications before an injected disconnect.
DRAIN_TIMEOUT_S = 5.0

# An ENROLL can overtake the end of the pairing it follows (the gateway's
# pair() returns once its own keys are out, the suit still stores them):
# wait this long for that pairing to finish.
PAIRING_SETTLE_TIMEOUT_S = 5.0


@dataclasses.dataclass
class SuitContext:
    """Give a connection what it needs from the suit that owns it."""

    serial: str
    device: Device
    store: SuitLogStore
    status_char: Characteristic[bytes]
    control_char: Characteristic[bytes]
    data_char: Characteristic[bytes]
    faults: SuitFaults
    stats: SuitStats
    max_window_chunks: int
    on_logs_changed: Callable[[], None]
    guard: SuitGuard


def _att_error(result: ResultCode) -> ATT_Error:
    return ATT_Error(ATT_APP_ERROR_BASE + result)


class SuitConnection:
    """Run commands, replies and the data stream for one gateway connection."""

    def __init__(self, context: SuitContext, connection: Connection) -> None:
        self._ctx = context
        self._connection = connection
        self._who = f"suit {context.serial}"
        self._commands: asyncio.Queue[Command] = asyncio.Queue()
        self._reply_lock = asyncio.Lock()
        self._stream: SuitStream | None = None
        self._stream_task: asyncio.Task[None] | None = None
        self._fault_task: asyncio.Task[None] | None = None
        self._pairing: asyncio.Future[bool] | None = None
        self._worker = asyncio.create_task(self._async_work())

    # Pairing on this link ---------------------------------------------------

    def on_pairing_start(self) -> None:
        """Note that SMP pairing began; ENROLL waits for its outcome."""
        self._pairing = asyncio.get_running_loop().create_future()

    def on_pairing_end(self, kept: bool) -> None:
        """Note how the pairing on this link ended."""
        if self._pairing is not None and not self._pairing.done():
            self._pairing.set_result(kept)

    # Control point writes -------------------------------------------------

    def on_control_write(self, value: bytes) -> None:
        """Parse one command; raise ATT_Error to refuse it at the ATT layer."""
        try:
            command = decode_command(value)
        except UnknownOpcodeError as error:
            _LOGGER.warning("%s: refused command: %s", self._who, error)
            raise _att_error(ResultCode.UNKNOWN_OPCODE) from error
        except ProtocolError as error:
            _LOGGER.warning("%s: refused command: %s", self._who, error)
            raise _att_error(ResultCode.MALFORMED) from error
        try:
            self._ctx.guard.check_command(self._connection, Opcode(value[0]))
        except ATT_Error:
            self._ctx.stats.commands_refused += 1
            raise
        if isinstance(command, Ack | Nack):
            self._apply_flow_control(command)
        else:
            self._commands.put_nowait(command)

    def _apply_flow_control(self, command: Ack | Nack) -> None:
        stream = self._stream
        if stream is None or stream.done:
            raise _att_error(ResultCode.NO_STREAM)
        if isinstance(command, Ack):
            self._ctx.stats.acks_received += 1
            accepted = stream.apply_ack(unwrap_seq(command.next_seq, stream.acked))
        else:
            self._ctx.stats.nacks_received += 1
            first = unwrap_seq(command.first_seq, stream.acked)
            accepted = stream.apply_nack(first, command.count)
        if not accepted:
            _LOGGER.warning("%s: %s outside the sent range", self._who, command)
            raise _att_error(ResultCode.BAD_RANGE)

    # Command worker ---------------------------------------------------------

    async def _async_work(self) -> None:
        while True:
            command = await self._commands.get()
            try:
                await self._async_handle(command)
            except TimeoutError:
                _LOGGER.warning("%s: reply to %s not confirmed", self._who, command)

    async def _async_handle(self, command: Command) -> None:
        if isinstance(command, ListLogs):
            entries = self._ctx.store.entries()
            page = entries[
                command.start_index : command.start_index + command.max_entries
            ]
            records = tuple(
                LogEntryRecord(log.log_id, log.size_bytes, log.sha256_hex)
                for log in page
            )
            await self._async_send(
                ListLogsReply(command.token, len(entries), command.start_index, records)
            )
        elif isinstance(command, ReadLog):
            await self._async_read(command)
        elif isinstance(command, ReleaseLog):
            await self._async_send(self._release(command))
        elif isinstance(command, Abort):
            await self._async_stop_stream()
            await self._async_send(AbortReply(command.token))
        elif isinstance(command, Enroll):
            await self._async_send(await self._async_enroll(command))

    async def _async_enroll(self, command: Enroll) -> Reply:
        pairing = self._pairing
        if pairing is not None and not pairing.done():
            try:
                await asyncio.wait_for(
                    asyncio.shield(pairing), PAIRING_SETTLE_TIMEOUT_S
                )
            except TimeoutError:
                _LOGGER.warning("%s: pairing still unfinished at ENROLL", self._who)
        suit_nonce = self._ctx.guard.enroll(self._connection, command.gateway_nonce)
        if suit_nonce is None:
            return ErrorReply(Opcode.ENROLL, command.token, ResultCode.NOT_PAIRING)
        return EnrollReply(command.token, suit_nonce)

    async def _async_read(self, command: ReadLog) -> None:
        stream = self._stream
        if stream is not None and not stream.done:
            await self._async_send(
                ErrorReply(Opcode.READ_LOG, command.token, ResultCode.BUSY)
            )
            return
        log = self._ctx.store.get(command.log_id)
        if log is None:
            await self._async_send(
                ErrorReply(Opcode.READ_LOG, command.token, ResultCode.UNKNOWN_LOG)
            )
            return
        length = command.length or log.size_bytes - command.offset
        if command.offset > log.size_bytes or command.offset + length > log.size_bytes:
            await self._async_send(
                ErrorReply(Opcode.READ_LOG, command.token, ResultCode.BAD_RANGE)
            )
            return

        # Chunk size follows the MTU negotiated on this link, capped by the
        # gateway's own view of it.
        att_mtu = self._connection.att_mtu
        payload = min(chunk_payload_for_mtu(att_mtu), command.max_payload_bytes)
        window = min(command.window_chunks, self._ctx.max_window_chunks)
        stream = SuitStream(log, command.offset, length, payload, window)
        self._ctx.stats.streams.append(
            StreamRecord(log.log_id, command.offset, length, att_mtu, payload, window)
        )
        self._stream = stream
        await self._async_send(
            ReadLogReply(
                command.token,
                log.log_id,
                command.offset,
                length,
                payload,
                stream.chunk_count,
                window,
            )
        )
        self._stream_task = asyncio.create_task(self._async_stream(stream))

    def _release(self, command: ReleaseLog) -> Reply:
        log = self._ctx.store.get(command.log_id)
        stream = self._stream
        if log is None:
            return ErrorReply(Opcode.RELEASE_LOG, command.token, ResultCode.UNKNOWN_LOG)
        refused = self._ctx.guard.check_receipt(self._connection, command)
        if refused is not None:
            _LOGGER.warning(
                "%s: refused release of log %s: receipt %s",
                self._who,
                log.log_id,
                "missing" if command.receipt is None else "does not verify",
            )
            return ErrorReply(Opcode.RELEASE_LOG, command.token, refused)
        if log.sha256_hex != command.sha256_hex:
            _LOGGER.warning(
                "%s: refused release of log %s: sha256 %s does not match %s",
                self._who,
                log.log_id,
                command.sha256_hex,
                log.sha256_hex,
            )
            return ErrorReply(
                Opcode.RELEASE_LOG, command.token, ResultCode.SHA_MISMATCH
            )
        if stream is not None and not stream.done and stream.log is log:
            return ErrorReply(Opcode.RELEASE_LOG, command.token, ResultCode.BUSY)
        evidence = None
        if command.receipt is not None:
            evidence = ReleaseEvidence(
                str(self._connection.peer_address), command.receipt.upload_digest.hex()
            )
        self._ctx.store.erase(log.log_id, evidence)
        _LOGGER.info("%s: log %s released and erased", self._who, log.log_id)
        self._ctx.on_logs_changed()
        return ReleaseLogReply(command.token)

    async def _async_send(self, reply: Reply) -> None:
        segments = segment_message(reply.encode(), self._connection.att_mtu)
        async with self._reply_lock:
            for segment in segments:
                await self._ctx.device.indicate_subscriber(
                    self._connection, self._ctx.control_char, segment
                )

    # Data stream ------------------------------------------------------------

    async def _async_stream(self, stream: SuitStream) -> None:
        since_yield = 0
        while not stream.done:
            step = stream.take_next()
            if step is None:
                if stream.all_sent and not stream.end_sent:
                    stream.end_sent = True
                    await self._async_send(
                        StreamEnd(stream.log.log_id, stream.chunk_count)
                    )
                    continue
                stream.wake.clear()
                try:
                    await asyncio.wait_for(stream.wake.wait(), STREAM_IDLE_TIMEOUT_S)
                except TimeoutError:
                    _LOGGER.warning(
                        "%s: stream of log %s idle %.0f s, abandoned",
                        self._who,
                        stream.log.log_id,
                        STREAM_IDLE_TIMEOUT_S,
                    )
                    return
                continue
            if not await self._async_send_chunk(stream, *step):
                return
            since_yield += 1
            if since_yield >= YIELD_EVERY_CHUNKS:
                since_yield = 0
                await asyncio.sleep(0)

    async def _async_send_chunk(
        self, stream: SuitStream, index: int, resend: bool
    ) -> bool:
        """Send one chunk; return False when an injected fault ends the link."""
        ctx = self._ctx
        offset, size = stream.chunk_span(index)
        frame = encode_chunk(index, offset, stream.log.read(offset, size))
        if ctx.faults.take_drop(index, offset, size):
            ctx.stats.chunks_dropped += 1
            return True
        await ctx.device.gatt_server.notify_subscriber(
            self._connection, ctx.data_char, frame
        )
        stats = ctx.stats
        stats.chunks_sent += 1
        stats.chunks_resent += resend
        stats.payload_bytes_sent += size
        stats.att_bytes_sent += len(frame) + 3
        by_log = stats.payload_bytes_by_log
        by_log[stream.log.log_id] = by_log.get(stream.log.log_id, 0) + size
        if ctx.faults.take_disconnect(size):
            self._fault_task = asyncio.create_task(self._async_fault_disconnect())
            return False
        return True

    async def _async_fault_disconnect(self) -> None:
        _LOGGER.info("%s: injected fault: dropping the link", self._who)
        try:
            await asyncio.wait_for(self._connection.drain(), DRAIN_TIMEOUT_S)
        except TimeoutError:
            _LOGGER.warning("%s: queued notifications not drained", self._who)
        await self._connection.disconnect()

    async def _async_stop_stream(self) -> None:
        task, self._stream_task = self._stream_task, None
        self._stream = None
        if task is not None:
            await async_cancel_and_wait(task)

    async def async_close(self) -> None:
        """Stop the worker and the stream (the link is gone); safe to repeat."""
        await self._async_stop_stream()
        await async_cancel_and_wait(self._worker)

    @property
    def connection(self) -> Connection:
        """Return the bumble connection this object serves."""
        return self._connection
