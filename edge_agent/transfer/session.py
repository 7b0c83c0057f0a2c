"""One gateway connection to one suit: status, log list, pull, release.

Connects with ``bleak_retry_connector.establish_connection`` and otherwise
uses only bleak's public API, so the same code drives BlueZ on a gateway and
the emulated radio in tests (only ``backend=`` differs).  A pull survives
link loss: the session reconnects and resumes at the offset the sink reports
as durable (``begin_log``), up to ``max_resumes`` times per log.

Security: a suit that requires bonding serves its logs only once the link is
encrypted with the bond, which the OS (or the emulated radio) does on
connect for a bonded suit; otherwise commands fail with
:class:`SuitNotBondedError`.  :meth:`SuitSession.async_bond` pairs and
enrols, and with a :class:`BondStore` a release carries a receipt signed
with the bond's release key.

Example::

    bonds = BondStore.for_workdir(workdir)
    async with SuitSession(device, backend=..., bond_store=bonds) as session:
        for entry in await session.async_list_logs():
            await session.async_pull(entry, sink)
        ...  # later, after the cloud committed the upload
        await session.async_release(log_id, sha256_hex, receipt=receipt)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal, TypeVar

from bleak import BleakClient
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError
from bleak_retry_connector import establish_connection

from edge_agent.transfer.bonding import async_enroll, sign_release
from edge_agent.transfer.bonds import BondStore, SuitBond
from edge_agent.transfer.errors import (
    ReleaseRefusedError,
    SuitLinkError,
    SuitNotFoundError,
    SuitProtocolError,
    TransferError,
    TransferStalledError,
)
from edge_agent.transfer.link import SuitLink
from edge_agent.transfer.models import (
    PullStats,
    SuitLogEntry,
    SuitStatus,
    UploadReceipt,
)
from edge_agent.transfer.puller import IDLE_TIMEOUT_S, MAX_IDLE_ROUNDS, StreamPull
from edge_agent.transfer.sink import LogSink
from firmware_bridge.ble.protocol import (
    DIS_SERIAL_NUMBER_UUID,
    MAX_LIST_ENTRIES,
    PROTOCOL_VERSION,
    SERVICE_UUID,
    STATUS_UUID,
    ErrorReply,
    ListLogs,
    ListLogsReply,
    ProtocolError,
    ReleaseLog,
    ReleaseLogReply,
    ResultCode,
    StatusRecord,
    normalize_log_id,
    normalize_sha256,
)

__all__ = ["SuitSession"]

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

# Connect attempts handed to establish_connection (it backs off in between).
CONNECT_ATTEMPTS = 4

# Overall bound on one connect, all attempts included.
CONNECT_TIMEOUT_S = 90.0

# Reconnect-and-resume rounds allowed per log before the pull gives up.
MAX_RESUMES = 5

# Pause before reconnecting after a lost link: lets the suit restart
# advertising and the adapter clean up.
RESUME_BACKOFF_S = 0.2

# Bound on disconnecting.
DISCONNECT_TIMEOUT_S = 10.0


class SuitSession:
    """Talk to one suit over one (re-established as needed) BLE connection."""

    def __init__(
        self,
        device: BLEDevice,
        *,
        backend: type[BaseBleakClient] | None = None,
        connect_attempts: int = CONNECT_ATTEMPTS,
        max_resumes: int = MAX_RESUMES,
        sink_io: Literal["thread", "loop"] = "thread",
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        max_idle_rounds: int = MAX_IDLE_ROUNDS,
        bond_store: BondStore | None = None,
    ) -> None:
        """Prepare a session; nothing happens on the air until async_connect.

        Args:
            device: the suit, as found by :func:`async_find_suits`.
            backend: bleak client backend; None picks the platform's.
            connect_attempts: attempts per connect (establish_connection).
            max_resumes: reconnect-and-resume rounds allowed per pulled log.
            sink_io: ``"thread"`` runs every LogSink call on one worker thread
                (fsync and the final SHA-256 never block BLE handling);
                ``"loop"`` calls the sink on the event loop thread.
            idle_timeout_s: silence on a stream with chunks outstanding after
                which they are re-requested.
            max_idle_rounds: silent rounds in a row before the stream counts
                as stalled (then the session reconnects, as for link loss).
            bond_store: the gateway's bonds; needed to release with a
                receipt and to pair.
        """
        self.device = device
        self._backend = backend
        self._connect_attempts = connect_attempts
        self._max_resumes = max_resumes
        self._sink_io = sink_io
        self._idle_timeout_s = idle_timeout_s
        self._max_idle_rounds = max_idle_rounds
        self._bond_store = bond_store
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._link: SuitLink | None = None
        self._serial: str | None = None
        self._who = f"suit {device.name or device.address} ({device.address})"

    async def __aenter__(self) -> SuitSession:
        await self.async_connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.async_close()

    @property
    def serial(self) -> str:
        """Return the suit's serial (read from its Device Information Service)."""
        if self._serial is None:
            raise TransferError(f"{self._who}: serial unknown before connecting")
        return self._serial

    @property
    def bond(self) -> SuitBond | None:
        """Return this gateway's bond with the suit (None: none, or no store)."""
        if self._bond_store is None:
            return None
        return self._bond_store.get(self.serial)

    # Connection -------------------------------------------------------------

    async def async_connect(self) -> None:
        """Connect, check the service, subscribe, read the serial.

        Raises:
            SuitNotFoundError: no connection after every attempt.
            SuitProtocolError: the device does not offer the transfer service.
        """
        name = self.device.name or self.device.address
        kwargs: dict[str, Any] = {}
        if self._backend is not None:
            kwargs["backend"] = self._backend
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                client = await establish_connection(
                    BleakClient,
                    self.device,
                    name,
                    disconnected_callback=self._on_disconnected,
                    max_attempts=self._connect_attempts,
                    **kwargs,
                )
        except (BleakError, TimeoutError) as error:
            raise SuitNotFoundError(
                f"{self._who}: no connection after {self._connect_attempts} "
                f"attempts: {error or type(error).__name__}; check that the suit "
                "is docked, powered and in range"
            ) from error
        link = SuitLink(client, self._who)
        self._link = link
        if client.services.get_service(SERVICE_UUID) is None:
            await self.async_close()
            raise SuitProtocolError(f"{self._who}: no suit transfer service")
        await link.async_start()
        if self._serial is None:
            raw = await link.async_read(DIS_SERIAL_NUMBER_UUID)
            self._serial = raw.decode("utf-8", errors="replace")
            self._who = f"suit {self._serial} ({self.device.address})"
            link.who = self._who
        _LOGGER.debug("%s: connected, ATT MTU %d", self._who, link.att_mtu)

    def _on_disconnected(self, client: BleakClient) -> None:
        link = self._link
        if link is not None and link.client is client:
            _LOGGER.info("%s: disconnected", self._who)
            link.mark_disconnected()

    async def _async_link(self) -> SuitLink:
        """Return a live link, reconnecting if the last one dropped."""
        link = self._link
        if link is None or link.disconnected.is_set():
            await self.async_connect()
            link = self._link
            assert link is not None
        return link

    async def async_close(self) -> None:
        """Disconnect and stop the sink worker thread."""
        link, self._link = self._link, None
        if link is not None and link.client.is_connected:
            try:
                async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                    await link.client.disconnect()
            except (BleakError, TimeoutError) as error:
                _LOGGER.warning("%s: disconnect failed: %s", self._who, error)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    # Commands ---------------------------------------------------------------

    async def async_status(self) -> SuitStatus:
        """Read battery, charging flag and stored log count."""
        link = await self._async_link()
        raw = await link.async_read(STATUS_UUID)
        try:
            record = StatusRecord.decode(raw)
        except ProtocolError as error:
            raise SuitProtocolError(f"{self._who}: {error}") from error
        if record.protocol_version != PROTOCOL_VERSION:
            _LOGGER.warning(
                "%s: protocol version %d, this gateway speaks %d",
                self._who,
                record.protocol_version,
                PROTOCOL_VERSION,
            )
        return SuitStatus(
            battery_pct=record.battery_pct,
            charging=record.charging,
            stored_logs=record.stored_logs,
            protocol_version=record.protocol_version,
            pairing_mode=record.pairing_mode,
            bond_required=record.bond_required,
        )

    async def async_bond(self) -> SuitBond:
        """Pair with the suit (it must be in pairing mode), enrol, store the bond.

        Raises:
            NotInPairingModeError: the suit is not in pairing mode.
            PairingError: pairing or enrolment failed; nothing was stored.
            TransferError: no bond store was given to the session.
        """
        if self._bond_store is None:
            raise TransferError(f"{self._who}: pairing needs a bond store")
        status = await self.async_status()
        link = await self._async_link()
        return await async_enroll(
            link, status, self.serial, self.device.address, self._bond_store
        )

    async def async_list_logs(self) -> list[SuitLogEntry]:
        """Return every log the suit holds, oldest first."""
        link = await self._async_link()
        entries: list[SuitLogEntry] = []
        while True:
            start = len(entries)
            reply = await link.async_command(
                functools.partial(
                    ListLogs, start_index=start, max_entries=MAX_LIST_ENTRIES
                )
            )
            if not isinstance(reply, ListLogsReply) or reply.start_index != start:
                raise SuitProtocolError(f"{self._who}: LIST_LOGS answered {reply}")
            entries.extend(
                SuitLogEntry(e.log_id, e.size_bytes, e.sha256_hex)
                for e in reply.entries
            )
            if not reply.entries or len(entries) >= reply.total_logs:
                return entries

    async def async_release(
        self, log_id: str, sha256_hex: str, receipt: UploadReceipt | None = None
    ) -> None:
        """Let the suit erase ``log_id``; it checks ``sha256_hex`` first.

        Args:
            log_id: the log to release.
            sha256_hex: the SHA-256 of the whole log, as pulled.
            receipt: what the cloud committed for the log; the release then
                carries a receipt signed with this suit's bond (required by a
                suit that requires bonding).

        Raises:
            ReleaseRefusedError: ``result`` SHA_MISMATCH (the suit keeps the
                log), BAD_RECEIPT (receipt missing or not signed with the
                suit's bond) or UNKNOWN_LOG (the suit no longer has it, e.g.
                the reply to an earlier release was lost).
            SuitNotBondedError: a receipt was given but the bond store holds
                no bond with this suit, or the suit refused the unbonded link.
        """
        log_id = normalize_log_id("RELEASE_LOG", log_id)
        sha256_hex = normalize_sha256("RELEASE_LOG", sha256_hex)
        link = await self._async_link()
        signed = None
        if receipt is not None:
            signed = sign_release(
                self._who, self._bond_store, self.serial, log_id, sha256_hex, receipt
            )
        reply = await link.async_command(
            lambda token: ReleaseLog(token, log_id, sha256_hex, signed)
        )
        if isinstance(reply, ErrorReply):
            hint = ""
            if reply.result is ResultCode.BAD_RECEIPT:
                hint = (
                    "; the suit accepts releases only with a receipt signed by "
                    "its bonded gateway: pair it with this gateway again"
                )
            raise ReleaseRefusedError(
                f"{self._who}: release of log {log_id} refused: "
                f"{reply.result.name}{hint}",
                reply.result,
            )
        if not isinstance(reply, ReleaseLogReply):
            raise SuitProtocolError(f"{self._who}: RELEASE_LOG answered {reply}")
        _LOGGER.info("%s: log %s released", self._who, log_id)

    # Pull -------------------------------------------------------------------

    async def _async_run_sink(self, function: Callable[..., _T], *args: Any) -> _T:
        if self._sink_io == "loop":
            return function(*args)
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="suit-sink"
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(function, *args)
        )

    async def async_pull(
        self,
        entry: SuitLogEntry,
        sink: LogSink,
        progress: Callable[[int], None] | None = None,
    ) -> PullStats:
        """Copy one log into ``sink``, resuming after link loss, then complete it.

        Args:
            entry: the log, as listed by :meth:`async_list_logs`.
            sink: where the bytes go (the custody buffer).
            progress: called with the durable byte count after each append.

        Raises:
            SuitLinkError, TransferStalledError: still failing after
                ``max_resumes`` reconnects.
            SuitCommandError, SuitProtocolError: the suit refused or broke
                the protocol.
            Whatever the sink raises (a SHA-256 mismatch at completion, say).
        """
        started = time.monotonic()
        stats = PullStats(entry.log_id, entry.size_bytes)
        durable = await self._async_begin(sink, entry)
        stats.start_offset = durable
        resumes = 0
        while durable < entry.size_bytes:
            try:
                link = await self._async_link()
                pull = StreamPull(
                    link,
                    sink,
                    self._async_run_sink,
                    entry,
                    durable,
                    stats,
                    progress,
                    idle_timeout_s=self._idle_timeout_s,
                    max_idle_rounds=self._max_idle_rounds,
                )
                durable = await pull.async_run()
            except (SuitLinkError, TransferStalledError) as error:
                resumes += 1
                stats.reconnects = resumes
                if resumes > self._max_resumes:
                    raise
                durable = await self._async_begin(sink, entry)
                _LOGGER.warning(
                    "%s: log %s interrupted at byte %d (%s); resuming, attempt %d/%d",
                    self._who,
                    entry.log_id,
                    durable,
                    error,
                    resumes,
                    self._max_resumes,
                )
                await self._async_drop_link()
                await asyncio.sleep(RESUME_BACKOFF_S)
        await self._async_run_sink(sink.complete_log, entry.log_id)
        stats.elapsed_s = time.monotonic() - started
        _LOGGER.info(
            "%s: log %s pulled, %d bytes in %.1f s, %d resumes, %d chunks re-requested",
            self._who,
            entry.log_id,
            entry.size_bytes,
            stats.elapsed_s,
            stats.reconnects,
            stats.chunks_nacked,
        )
        return stats

    async def _async_begin(self, sink: LogSink, entry: SuitLogEntry) -> int:
        durable: int = await self._async_run_sink(
            sink.begin_log,
            self.serial,
            entry.log_id,
            entry.size_bytes,
            entry.sha256_hex,
        )
        if not 0 <= durable <= entry.size_bytes:
            raise TransferError(
                f"{self._who}: sink reports {durable} bytes of log {entry.log_id} "
                f"stored, outside 0..{entry.size_bytes}"
            )
        return durable

    async def _async_drop_link(self) -> None:
        """Forget a broken link so the next operation reconnects."""
        link, self._link = self._link, None
        if link is not None and link.client.is_connected:
            try:
                async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                    await link.client.disconnect()
            except (BleakError, TimeoutError) as error:
                _LOGGER.debug("%s: disconnect of a stale link: %s", self._who, error)
