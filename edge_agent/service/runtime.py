"""Build the agent's parts from its configuration, and close them again.

One place decides which object store, which BLE backend and which crash
model a gateway uses, so the service, the demo and ``edge-agent ingest``
cannot drift apart.

Federated learning is wired here too: with ``[processing] training_windows``
on, processing keeps labelled windows of each log in ``buffer/fl-windows.db``
(``AgentRuntime.training_store``), and with MQTT on, the ``crash_verdict``
and ``training_consent`` commands reach that store through
``edge_agent.fl.TrainingCommandHandler``, chained after the model manager's
handler. Consent commands are applied even with training windows off, so an
opt-out holds when they are switched on later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_agent.config import GatewayConfig
from edge_agent.custody import CustodyBuffer, RetentionPolicy
from edge_agent.fl.inbound import TrainingCommandHandler
from edge_agent.fl.store import STORE_FILE_NAME
from edge_agent.modelmgr import ModelInstallError, ModelManager
from edge_agent.modelmgr.wiring import build_model_manager
from edge_agent.mqtt import (
    GatewayMqttClient,
    InboundHandler,
    InboundMessage,
    MqttError,
)
from edge_agent.processing import CrashDetector, ProcessOptions
from edge_agent.processing.errors import CrashModelError
from edge_agent.upload import (
    BucketNames,
    ChecksumMode,
    ObjectLayout,
    ObjectRef,
    ObjectStore,
    Uploader,
    UploadJournal,
    UploadSettings,
)
from edge_agent.upload.factory import (
    StoreSettings,
    build_object_store,
    etags_are_body_md5,
    parse_key_file_list,
)
from models.registry import ModelInfo

__all__ = ["AgentRuntime", "build_store", "open_runtime", "store_settings"]

_LOGGER = logging.getLogger(__name__)

BUFFER_DIR = "buffer"
JOURNAL_FILE = "uploads.db"
MQTT_OUTBOX_FILE = "mqtt-outbox.db"
# How long start-up waits for the first broker connection before going on.
MQTT_FIRST_CONNECT_S = 10.0


def store_settings(
    config: GatewayConfig, *, timeout_s: float | None = None
) -> StoreSettings:
    """Return the ``[store]`` settings with paths taken from the workdir."""
    store = config.store
    return StoreSettings(
        kind=store.kind,
        root=config.store_root,
        endpoint_url=store.endpoint_url or "",
        region=store.region,
        access_key_id=store.access_key_id or "",
        secret_access_key=store.secret_access_key or "",
        connection_string=store.connection_string,
        account_name=store.account_name,
        account_key=store.account_key,
        uploads_container=store.uploads_container,
        encryption=store.encryption,
        key_file=config.store_key_file,
        old_key_files=parse_key_file_list(store.old_key_files, config.workdir),
        connect_timeout_s=timeout_s,
        read_timeout_s=timeout_s,
    )


def build_store(config: GatewayConfig) -> ObjectStore:
    """Return the object store the configuration names, encrypting as set.

    Raises:
        StoreSettingsError: incomplete or contradictory ``[store]`` settings.
        KeyFileError: an encryption key file is missing or unusable.
    """
    return build_object_store(store_settings(config))


@dataclass
class AgentRuntime:
    """The long-lived parts of one gateway agent."""

    config: GatewayConfig
    buffer: CustodyBuffer
    store: ObjectStore
    uploader: Uploader
    layout: ObjectLayout
    detector: CrashDetector | None
    process_options: ProcessOptions
    mqtt: GatewayMqttClient | None = None
    # Signed model updates ([models] enabled); started by the service.
    models: ModelManager | None = None
    # The labelled-window store processing fills ([processing]
    # training_windows), and how many logs failed to reach it.
    training_store: Path | None = None
    training_store_errors: int = 0

    def use_model(self, info: ModelInfo) -> None:
        """Load ``info`` as the crash detector the next logs are scored with.

        Raises:
            ModelInstallError: the model cannot be opened (the model manager
                then restores the previous one).
        """
        try:
            self.detector = CrashDetector(info)
        except CrashModelError as exc:
            raise ModelInstallError(str(exc), version=info.version) from exc

    def close(self) -> None:
        """Stop MQTT (publishing offline), release the buffer's lock and database."""
        if self.models is not None:
            self.models.stop()
        if self.mqtt is not None:
            self.mqtt.stop()
        self.uploader.journal.close()
        self.buffer.close()


def open_runtime(
    config: GatewayConfig,
    *,
    detector: CrashDetector | None = None,
    on_upload_part: Callable[[ObjectRef, int, int], None] | None = None,
) -> AgentRuntime:
    """Open the buffer, store and uploader of ``config``.

    Args:
        config: the gateway configuration.
        detector: a crash detector already loaded; when None, the active
            model of the model manager ([models] enabled), else the shipped.
        on_upload_part: called after each multipart part is stored (the
            service feeds its watchdog with it).

    Raises:
        CrashModelError: the shipped model is missing or fails verification.
        CustodyError: the buffer cannot be opened (another agent holds it,
            or the custody key file is missing, too open or malformed).
        StorageError: the object store cannot be set up.
    """
    buffer_root = config.workdir / BUFFER_DIR
    buffer_root.mkdir(parents=True, exist_ok=True)
    buffer = CustodyBuffer.open(
        buffer_root,
        retention=RetentionPolicy(
            keep_raw_after_upload=not config.retention.purge_after_release
        ),
        budget_bytes=config.custody_budget_bytes,
        key_file=config.custody_key_file,
        work_dir=config.custody_work_dir,
    )
    try:
        store = build_store(config)
        buckets = BucketNames(
            raw=config.store.raw_bucket,
            analytics=config.store.analytics_bucket,
            crash=config.store.crash_bucket,
        )
        for bucket in (buckets.raw, buckets.analytics, buckets.crash):
            store.ensure_bucket(bucket)
        uploader = Uploader(
            store,
            UploadJournal(buffer_root / JOURNAL_FILE),
            UploadSettings(
                multipart_threshold_bytes=config.store.multipart_threshold_bytes,
                part_size_bytes=config.store.part_size_bytes,
                checksum_mode=ChecksumMode(config.store.checksum_mode),
                verify_etag=etags_are_body_md5(store),
            ),
            on_part_done=on_upload_part,
        )
        models = None
        if config.models.enabled:
            models = build_model_manager(config, store)
            if detector is None:
                detector = CrashDetector(models.active_info())
        detector = detector or CrashDetector.shipped()
        handlers: list[InboundHandler] = []
        if models is not None:
            handlers.append(models.on_inbound)
        handlers.append(TrainingCommandHandler(buffer_root / STORE_FILE_NAME))
        mqtt = _start_mqtt(config, buffer_root, _chain(handlers))
    except BaseException:
        buffer.close()
        raise
    runtime = AgentRuntime(
        config=config,
        buffer=buffer,
        store=store,
        uploader=uploader,
        layout=ObjectLayout(buckets),
        detector=detector,
        process_options=ProcessOptions(
            chunk_s=config.processing.chunk_s,
            compresslevel=config.processing.gzip_level,
            training_windows=config.processing.training_windows,
        ),
        mqtt=mqtt,
        models=models,
        training_store=(
            buffer_root / STORE_FILE_NAME
            if config.processing.training_windows
            else None
        ),
    )
    if models is not None:
        models.on_model = runtime.use_model
    return runtime


def _chain(handlers: list[InboundHandler]) -> InboundHandler:
    """Return a handler passing each message to every handler in turn.

    Each handler ignores the kinds it does not own; an error in one is the
    dispatcher's to quarantine and count.
    """

    def handle(message: InboundMessage) -> None:
        for handler in handlers:
            handler(message)

    return handle


def _start_mqtt(
    config: GatewayConfig, buffer_root: Path, on_message: InboundHandler | None = None
) -> GatewayMqttClient | None:
    """Start the broker link when configured; events wait in its outbox."""
    if not config.mqtt.enabled:
        return None
    client = GatewayMqttClient(
        config.mqtt, buffer_root / MQTT_OUTBOX_FILE, on_message=on_message
    )
    client.start()
    try:
        client.wait_connected(MQTT_FIRST_CONNECT_S, fail_fast=True)
    except MqttError as exc:
        # Not fatal: events stay in the outbox and the link keeps retrying;
        # the log line tells the operator what to fix (certificate, name).
        _LOGGER.error("gateway %s: MQTT: %s", config.gateway_id, exc)
    return client


def describe_paths(config: GatewayConfig) -> dict[str, Path]:
    """Return where the agent keeps its buffer and (local) store."""
    return {"buffer": config.workdir / BUFFER_DIR, "store": config.store_root}
