"""Pull one READ_LOG stream into a LogSink: window, re-requests, batching.

Data notifications are handled in bleak's callback, synchronously: decode,
verify, reorder (:class:`StreamReceiver`), pass in-order bytes to the
:class:`SinkWriter`, and ask the :class:`FlowSender` for NACKs (gaps) and
ACKs (every quarter window).  ACKs stop while more than MAX_UNFLUSHED_BYTES
wait for the sink, so a slow disk throttles the suit instead of filling RAM.
When the link drops, whatever arrived in order is flushed before the error
propagates, so a resume re-sends at most the chunk that was in the air.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from edge_agent.transfer.errors import (
    SuitCommandError,
    SuitLinkError,
    SuitProtocolError,
    TransferError,
    TransferStalledError,
)
from edge_agent.transfer.link import SuitLink
from edge_agent.transfer.models import PullStats, SuitLogEntry
from edge_agent.transfer.receiver import NackRange, StreamReceiver
from edge_agent.transfer.sink import LogSink
from firmware_bridge.ble.aio import async_cancel_and_wait
from firmware_bridge.ble.protocol import (
    Abort,
    Ack,
    ErrorReply,
    Nack,
    ProtocolError,
    ReadLog,
    ReadLogReply,
    Reply,
    ResultCode,
    StreamEnd,
    chunk_payload_for_mtu,
)

__all__ = ["FLUSH_BYTES", "WINDOW_CHUNKS", "FlowSender", "SinkWriter", "StreamPull"]

_LOGGER = logging.getLogger(__name__)

# Contiguous bytes gathered before one append_log_bytes (one fsync): 64 KiB
# keeps fsyncs to a few per second at BLE speeds, and bounds what a crash of
# the gateway itself can cost.
FLUSH_BYTES = 64 * 1024

# In-order bytes allowed to wait for the sink before ACKs stop (backpressure).
MAX_UNFLUSHED_BYTES = 4 * FLUSH_BYTES

# Chunks the suit may send ahead of the last ACK: 1024 x 236 B = 240 KB, far
# more than one ACK round trip of airtime, so the link never waits for an ACK.
# ACKs go every quarter window (256 chunks): each is a write with response,
# and fewer of them leave more of the link to data.
WINDOW_CHUNKS = 1024

# No chunk for this long while some are outstanding: re-request them.
IDLE_TIMEOUT_S = 1.0

# Idle rounds in a row before the stream counts as stalled.
MAX_IDLE_ROUNDS = 8

SinkRunner = Callable[..., Awaitable[Any]]


class FlowSender:
    """Send NACKs (first) and the latest ACK from one background task."""

    def __init__(self, link: SuitLink, on_error: Callable[[TransferError], None]):
        self._link = link
        self._on_error = on_error
        self._nacks: collections.deque[NackRange] = collections.deque()
        self._ack: int | None = None
        self._wake = asyncio.Event()
        self.chunks_nacked = 0
        self._task = asyncio.create_task(self._async_run())

    def nack(self, nack_range: NackRange) -> None:
        """Queue a re-request of ``count`` chunks from ``first``."""
        self._nacks.append(nack_range)
        self._wake.set()

    def ack(self, next_index: int) -> None:
        """Acknowledge every chunk before ``next_index`` (latest value wins)."""
        self._ack = next_index
        self._wake.set()

    async def _async_run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._nacks or self._ack is not None:
                    if self._nacks:
                        first, count = self._nacks.popleft()
                        self.chunks_nacked += count
                        await self._link.async_flow(Nack(0, first, count))
                    elif self._ack is not None:
                        index, self._ack = self._ack, None
                        await self._link.async_flow(Ack(0, index))
        except TransferError as error:
            self._on_error(error)

    async def async_close(self) -> None:
        """Stop sending (pending ACKs and NACKs are dropped)."""
        await async_cancel_and_wait(self._task)


class SinkWriter:
    """Batch in-order bytes and append them to the sink one batch at a time."""

    def __init__(
        self,
        run_sink: SinkRunner,
        sink: LogSink,
        log_id: str,
        durable_offset: int,
        on_flushed: Callable[[], None],
    ) -> None:
        self.durable = durable_offset
        self.appends = 0
        self.error: BaseException | None = None
        self._run_sink = run_sink
        self._sink = sink
        self._log_id = log_id
        self._on_flushed = on_flushed
        self._buffer = bytearray()
        self._in_flight = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def unflushed_bytes(self) -> int:
        """Return bytes received in order but not yet durable."""
        return len(self._buffer) + self._in_flight

    def add(self, data: bytes) -> None:
        """Queue in-order bytes; start an append once a batch is full."""
        self._buffer += data
        if self._task is None and len(self._buffer) >= FLUSH_BYTES:
            self._start()

    def _start(self) -> None:
        data = bytes(self._buffer)
        self._buffer.clear()
        self._in_flight = len(data)
        self._task = asyncio.create_task(self._async_append(data))

    async def _async_append(self, data: bytes) -> None:
        try:
            await self._run_sink(
                self._sink.append_log_bytes, self._log_id, self.durable, data
            )
        except Exception as error:  # the sink's own errors pass through
            self.error = error
            self._task = None
            self._on_flushed()
            return
        self.durable += len(data)
        self.appends += 1
        self._in_flight = 0
        self._task = None
        if self.error is None and len(self._buffer) >= FLUSH_BYTES:
            self._start()
        self._on_flushed()

    async def async_flush_all(self) -> None:
        """Wait for appends in flight, then append whatever is left."""
        while self._task is not None:
            await asyncio.wait([self._task])
        if self.error is not None:
            raise self.error
        if self._buffer:
            self._start()
            while self._task is not None:
                await asyncio.wait([self._task])
            if self.error is not None:
                raise self.error


class StreamPull:
    """Run one READ_LOG stream from ``start_offset`` to the end of the log."""

    def __init__(
        self,
        link: SuitLink,
        sink: LogSink,
        run_sink: SinkRunner,
        entry: SuitLogEntry,
        start_offset: int,
        stats: PullStats,
        progress: Callable[[int], None] | None,
        *,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        max_idle_rounds: int = MAX_IDLE_ROUNDS,
    ) -> None:
        self._link = link
        self._idle_timeout_s = idle_timeout_s
        self._max_idle_rounds = max_idle_rounds
        self._entry = entry
        self._start = start_offset
        self._stats = stats
        self._progress = progress
        self._wake = asyncio.Event()
        self._failure: TransferError | None = None
        self._chunks_seen = 0
        self._ack_requested = 0
        self._receiver: StreamReceiver | None = None
        self._flow: FlowSender | None = None
        self._writer = SinkWriter(
            run_sink, sink, entry.log_id, start_offset, self._on_flushed
        )

    async def async_run(self) -> int:
        """Stream and store; return the durable end offset (flushed even on error)."""
        self._flow = FlowSender(self._link, self._fail)
        self._link.on_stream_end = self._on_stream_end
        self._link.on_disconnect = self._wake.set
        try:
            reply = await self._async_open()
            receiver = self._receiver
            assert receiver is not None  # installed by _install on the reply
            self._stats.chunk_payload_bytes.append(reply.chunk_payload_bytes)
            await self._async_wait_complete(receiver)
            await self._link.async_flow(Ack(0, receiver.chunk_count))
        finally:
            self._link.on_data = None
            self._link.on_stream_end = None
            self._link.on_disconnect = None
            await self._flow.async_close()
            self._stats.chunks_nacked += self._flow.chunks_nacked
            if self._receiver is not None:
                self._collect(self._receiver)
            await self._writer.async_flush_all()
            self._stats.sink_appends += self._writer.appends
            self._report_progress()
        return self._writer.durable

    def _collect(self, receiver: StreamReceiver) -> None:
        self._stats.duplicate_chunks += receiver.duplicates
        self._stats.crc_errors += receiver.crc_errors
        self._stats.payload_bytes_received += receiver.payload_bytes_received
        self._writer.add(receiver.take_in_order())

    def _expected_reply(self, reply: ReadLogReply, max_payload: int) -> bool:
        entry = self._entry
        return (reply.log_id, reply.offset, reply.length) == (
            entry.log_id,
            self._start,
            entry.size_bytes - self._start,
        ) and reply.chunk_payload_bytes <= max_payload

    async def _async_open(self) -> ReadLogReply:
        entry = self._entry
        max_payload = chunk_payload_for_mtu(self._link.att_mtu)

        def install(reply: Reply) -> None:
            # Runs in the reply's callback, so the receiver is in place before
            # the first chunk (sent right after the reply) is handled.
            if isinstance(reply, ReadLogReply) and self._expected_reply(
                reply, max_payload
            ):
                self._receiver = StreamReceiver(reply)
                self._link.on_data = self._on_data

        for attempt in (1, 2):
            reply = await self._link.async_command(
                lambda token: ReadLog(
                    token, entry.log_id, self._start, 0, max_payload, WINDOW_CHUNKS
                ),
                install,
            )
            if isinstance(reply, ErrorReply):
                if reply.result is ResultCode.BUSY and attempt == 1:
                    # A stream left over from an earlier failure: stop it.
                    await self._link.async_command(Abort)
                    continue
                raise SuitCommandError(
                    f"{self._link.who}: READ_LOG {entry.log_id} at {self._start} "
                    f"refused: {reply.result.name}",
                    reply.result,
                )
            if not isinstance(reply, ReadLogReply) or self._receiver is None:
                raise SuitProtocolError(
                    f"{self._link.who}: READ_LOG of {entry.log_id} from "
                    f"{self._start} (chunk payload at most {max_payload}) "
                    f"answered {reply}"
                )
            return reply
        raise SuitCommandError(f"{self._link.who}: suit stays busy", None)

    async def _async_wait_complete(self, receiver: StreamReceiver) -> None:
        idle_rounds = 0
        seen_before = self._chunks_seen
        while not receiver.complete:
            self._raise_if_failed()
            self._wake.clear()
            try:
                async with asyncio.timeout(self._idle_timeout_s):
                    await self._wake.wait()
                continue
            except TimeoutError:
                pass
            if self._chunks_seen != seen_before:
                seen_before, idle_rounds = self._chunks_seen, 0
                continue
            idle_rounds += 1
            if idle_rounds > self._max_idle_rounds:
                raise TransferStalledError(
                    f"{self._link.who}: log {receiver.log_id} stalled at byte "
                    f"{receiver.in_order_end} after {self._max_idle_rounds} re-requests"
                )
            _LOGGER.debug(
                "%s: stream idle, re-request round %d", self._link.who, idle_rounds
            )
            assert self._flow is not None
            for nack_range in receiver.on_idle():
                self._flow.nack(nack_range)
            self._flow.ack(receiver.expected)
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._writer.error is not None:
            raise self._writer.error
        if self._link.disconnected.is_set():
            raise SuitLinkError(f"{self._link.who}: link lost during the stream")

    def _fail(self, error: TransferError) -> None:
        if self._failure is None:
            self._failure = error
        self._wake.set()

    def _on_data(self, frame: bytearray) -> None:
        receiver, flow = self._receiver, self._flow
        assert receiver is not None and flow is not None
        self._chunks_seen += 1
        before = receiver.expected
        try:
            nacks = receiver.feed(frame)
        except ProtocolError as error:
            self._fail(SuitProtocolError(f"{self._link.who}: {error}"))
            return
        for nack_range in nacks:
            flow.nack(nack_range)
        if receiver.expected == before:
            return
        if receiver.complete:
            self._writer.add(receiver.take_in_order())
            self._wake.set()
            return
        if receiver.in_order_pending_bytes >= FLUSH_BYTES:
            self._writer.add(receiver.take_in_order())
        self._maybe_ack()

    def _on_stream_end(self, event: StreamEnd) -> None:
        receiver, flow = self._receiver, self._flow
        if receiver is None or flow is None or event.log_id != receiver.log_id:
            return
        for nack_range in receiver.on_stream_end():
            flow.nack(nack_range)

    def _maybe_ack(self) -> None:
        receiver, flow = self._receiver, self._flow
        assert receiver is not None and flow is not None
        target = receiver.expected
        if target - self._ack_requested < max(1, receiver.window_chunks // 4):
            return
        if target >= receiver.chunk_count:
            return  # the final ACK is sent once the stream is complete
        unflushed = self._writer.unflushed_bytes + receiver.in_order_pending_bytes
        if unflushed > MAX_UNFLUSHED_BYTES:
            return  # resumed by _on_flushed
        self._ack_requested = target
        flow.ack(target)

    def _on_flushed(self) -> None:
        self._report_progress()
        if self._writer.error is not None:
            self._wake.set()
        elif self._receiver is not None and self._flow is not None:
            self._maybe_ack()

    def _report_progress(self) -> None:
        if self._progress is not None:
            self._progress(self._writer.durable)
