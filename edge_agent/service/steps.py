"""The agent's work after a log is on the gateway: process, upload, purge.

Each step takes every log waiting in its state, so the same functions serve
the first pass after a pull and the catch-up after a restart. A log whose
input is bad is quarantined with the error (file and place) and the step goes
on with the next log; a store outage stops the upload step, leaving the rest
for the next cycle.

Files are read and written through the buffer (``readable_raw``,
``processing_dir``, ``readable_outputs``): with encryption at rest on, the
processing pipeline and the uploader see plaintext working copies that exist
only for the step; a stored file that fails authentication is quarantined
like bad input, while a wrong key stops the step (a set-up problem, not bad
data).

After a log is processed, the windows processing kept for federated training
go to the labelled-window store (``edge_agent.fl.store``): airbag events
and the crashes the model detected are labelled there, riders who opted out
are skipped. That store is a side line: if it fails, a WARNING says so, the
runtime counts it (``training_store_errors``) and the log goes on as
processed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.custody import (
    EncryptedDataError,
    LogRecord,
    LogState,
    WrongKeyError,
)
from edge_agent.fl.store import WindowStore
from edge_agent.ingest import UnitOptions, ingest_file
from edge_agent.mqtt import EventType, GatewayEvent
from edge_agent.processing import (
    SOFTWARE_VERSION,
    BadInputError,
    ProcessingEnvironmentError,
    ProcessResult,
)
from edge_agent.upload import (
    OUTPUT_ANALYTICS,
    OUTPUT_RAW_CSV,
    IntegrityError,
    StorageError,
    upload_log,
)

from .progress import SILENT, Progress
from .runtime import AgentRuntime

__all__ = [
    "IMPORT_OPTIONS_FILE",
    "StepReport",
    "process_pending",
    "purge_released",
    "release_imported",
    "upload_pending",
]

_LOGGER = logging.getLogger(__name__)

# Written beside an imported CSV's outputs before processing, so a restart
# processes it with the unit options the operator gave.
IMPORT_OPTIONS_FILE = "import-options.json"


@dataclass
class StepReport:
    """What one pass of the steps did, log by log."""

    processed: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    purged: list[str] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)
    deferred: dict[str, str] = field(default_factory=dict)
    results: dict[str, ProcessResult] = field(default_factory=dict)

    def merge(self, other: StepReport) -> None:
        """Add another report's entries to this one."""
        self.processed += other.processed
        self.uploaded += other.uploaded
        self.released += other.released
        self.purged += other.purged
        self.quarantined.update(other.quarantined)
        self.deferred.update(other.deferred)
        self.results.update(other.results)


def write_import_options(
    out_dir: Path, units: UnitOptions, columns: dict[str, str]
) -> None:
    """Keep the unit options of an imported CSV beside its outputs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {"units": dataclasses.asdict(units), "columns": columns}
    (out_dir / IMPORT_OPTIONS_FILE).write_text(json.dumps(document, indent=2))


def _import_options(out_dir: Path) -> tuple[UnitOptions, dict[str, str]]:
    path = out_dir / IMPORT_OPTIONS_FILE
    if not path.exists():
        return UnitOptions(), {}
    document: dict[str, Any] = json.loads(path.read_text())
    return UnitOptions(**document["units"]), dict(document["columns"])


def _process_one(runtime: AgentRuntime, record: LogRecord) -> ProcessResult:
    """Process a pulled log and record its outputs in the buffer.

    The returned result names the stored outputs, not working copies.
    """
    buffer = runtime.buffer
    units, columns = _import_options(buffer.output_dir(record.log_id))
    with (
        buffer.readable_raw(record.log_id) as raw_path,
        buffer.processing_dir(record.log_id) as out_dir,
    ):
        try:
            result = ingest_file(
                raw_path,
                record.rider_id or "",
                record.suit_serial,
                out_dir,
                runtime.detector,
                units=units,
                columns=columns,
                options=runtime.process_options,
                log_id=record.log_id,
            )
        except BadInputError as exc:
            if record.raw_path is not None and raw_path != record.raw_path:
                # Name the stored file, not the working copy, in the reason.
                text = str(exc).replace(str(raw_path), str(record.raw_path))
                raise _RejectedInput(text) from exc
            raise
        outputs = {OUTPUT_RAW_CSV: result.csv_path}
        if result.analytics_path is not None:
            outputs[OUTPUT_ANALYTICS] = result.analytics_path
        stored = buffer.mark_processed(
            record.log_id, outputs, result.analytics, result.crash.detected
        )
    return dataclasses.replace(
        result,
        csv_path=stored.outputs[OUTPUT_RAW_CSV],
        analytics_path=stored.outputs.get(OUTPUT_ANALYTICS),
    )


def _keep_training_windows(
    runtime: AgentRuntime, record: LogRecord, result: ProcessResult
) -> ProcessResult:
    """Store the log's training windows; return the result without them.

    Never raises: the window store must not hold up custody.
    """
    training = result.training
    if training is None or runtime.training_store is None:
        return result
    who = f"suit {record.suit_serial}: log {record.log_id}"
    try:
        with WindowStore(runtime.training_store) as store:
            store.add_log(
                log_id=record.log_id,
                rider_id=record.rider_id or "",
                windows=training.windows,
                starts_s=training.starts_s,
                airbag_offsets_s=training.airbag_offsets_s,
                detected_offsets_s=[event.t_offset_s for event in result.crash.events],
                # Processing already kept one normal window in NORMAL_EVERY.
                negative_every=1,
            )
    except Exception as exc:
        runtime.training_store_errors += 1
        _LOGGER.warning(
            "%s: training windows not stored (%d failures so far): %s",
            who,
            runtime.training_store_errors,
            exc,
        )
    # The windows are stored (or lost); the step report need not hold them.
    return dataclasses.replace(result, training=None)


class _RejectedInput(Exception):
    """Bad input of an encrypted log, its message naming the stored file."""


def process_pending(runtime: AgentRuntime, progress: Progress = SILENT) -> StepReport:
    """Process every pulled log; quarantine the ones with bad input."""
    report = StepReport()
    buffer = runtime.buffer
    pending = buffer.logs([LogState.PULLED])
    for number, record in enumerate(pending, start=1):
        who = f"suit {record.suit_serial}: log {record.log_id}"
        if record.source == "import" and record.original_name:
            who += f" (imported from {record.original_name})"
        identity = runtime.config.identity(record.suit_serial)
        if record.rider_id is None and identity is not None:
            # A row rebuilt from disk after the index was lost has no rider.
            record = buffer.assign_rider(record.log_id, identity.rider_id)
        if record.rider_id is None:
            reason = "no rider mapped to this suit; pair it (edge-agent pair)"
            report.deferred[record.log_id] = reason
            _LOGGER.warning("%s: processing deferred: %s", who, reason)
            continue
        with progress.task(
            f"process {record.log_id[:8]} ({number}/{len(pending)})",
            total=1,
            unit="log",
        ) as task:
            try:
                result = _process_one(runtime, record)
            except WrongKeyError as exc:
                report.deferred[record.log_id] = str(exc)
                _LOGGER.error("%s: processing stopped: %s", who, exc)
                break
            except (BadInputError, _RejectedInput, EncryptedDataError) as exc:
                entry = buffer.quarantine(record.log_id, str(exc))
                report.quarantined[record.log_id] = str(exc)
                _LOGGER.error(
                    "%s: rejected, kept in %s: %s", who, entry.stored_path, exc
                )
                continue
            except ProcessingEnvironmentError as exc:
                # Disk, model or output trouble: not the log's fault; retry later.
                report.deferred[record.log_id] = str(exc)
                _LOGGER.error("%s: processing deferred: %s", who, exc)
                break
            except Exception as exc:
                # A bug met by this input. Keep the log aside (the suit keeps
                # its copy too) so the logs behind it are not blocked forever.
                reason = f"internal error while processing: {exc!r}"
                entry = buffer.quarantine(record.log_id, reason)
                report.quarantined[record.log_id] = reason
                _LOGGER.exception("%s: %s; kept in %s", who, reason, entry.stored_path)
                continue
            task.advance(1)
        result = _keep_training_windows(runtime, record, result)
        report.processed.append(record.log_id)
        report.results[record.log_id] = result
        _LOGGER.info(
            "%s: processed, %d samples, crash %s",
            who,
            result.samples,
            {True: "detected", False: "none", None: "not judged"}[
                result.crash.detected
            ],
        )
    return report


def upload_pending(runtime: AgentRuntime, progress: Progress = SILENT) -> StepReport:
    """Upload every processed log; stop at the first store outage."""
    report = StepReport()
    buffer = runtime.buffer
    pending = buffer.logs([LogState.PROCESSED])
    with progress.task("upload", total=len(pending), unit="log") as task:
        for record in pending:
            who = f"suit {record.suit_serial}: log {record.log_id}"
            try:
                with buffer.readable_outputs(record.log_id) as readable:
                    keys = upload_log(
                        runtime.uploader,
                        readable,
                        runtime.layout,
                        software_version=SOFTWARE_VERSION,
                    )
            except WrongKeyError as exc:
                report.deferred[record.log_id] = str(exc)
                _LOGGER.error("%s: upload stopped: %s", who, exc)
                break
            except (IntegrityError, EncryptedDataError) as exc:
                # The outputs on flash no longer match what was recorded:
                # keep them aside; the log is re-pulled from the suit.
                entry = buffer.quarantine(record.log_id, str(exc))
                report.quarantined[record.log_id] = str(exc)
                _LOGGER.error(
                    "%s: upload refused, kept in %s: %s", who, entry.stored_path, exc
                )
                continue
            except StorageError as exc:
                report.deferred[record.log_id] = str(exc)
                _LOGGER.warning("%s: upload deferred, store failing: %s", who, exc)
                break
            # Events first: their ids are stable, so a crash before the state
            # change re-enqueues the same ids and the outbox keeps one of each.
            _enqueue_events(runtime, record, keys)
            buffer.mark_uploaded(record.log_id, keys)
            report.uploaded.append(record.log_id)
            task.advance(1)
    return report


def _enqueue_events(
    runtime: AgentRuntime, record: LogRecord, keys: dict[str, str]
) -> None:
    """Queue the ``log_uploaded`` (and ``crash_detected``) events of a log."""
    if runtime.mqtt is None:
        return

    def event(kind: EventType, details: dict[str, Any] | None = None) -> GatewayEvent:
        return GatewayEvent.create(
            kind,
            gateway_id=runtime.config.gateway_id,
            rider_id=record.rider_id or "",
            suit_id=record.suit_serial,
            log_id=record.log_id,
            object_keys=keys,
            sha256=record.sha256_hex,
            details=details,
        )

    runtime.mqtt.enqueue(event(EventType.LOG_UPLOADED))
    if record.crash_detected:
        crash = (record.analytics or {}).get("crash") or {}
        runtime.mqtt.enqueue(
            event(EventType.CRASH_DETECTED, {"events": crash.get("events", [])})
        )


def release_imported(runtime: AgentRuntime) -> StepReport:
    """Release uploaded logs that came from an archive (no suit to tell)."""
    report = StepReport()
    for record in runtime.buffer.logs([LogState.UPLOADED]):
        if record.source != "import":
            continue
        runtime.buffer.mark_released(record.log_id)
        report.released.append(record.log_id)
    return report


def purge_released(runtime: AgentRuntime) -> StepReport:
    """Delete local bytes of released logs per the retention setting."""
    report = StepReport()
    report.purged = runtime.buffer.purge_released()
    return report
