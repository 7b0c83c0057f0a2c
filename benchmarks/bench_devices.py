"""Throughput of the live device-data path: MQTT samples to catalogued CSV.

How to run (from the repository root, dev install; loopback only)::

    .venv/bin/python benchmarks/bench_devices.py
    .venv/bin/python benchmarks/bench_devices.py --devices 20 --samples 2000

What it does:

1. Starts Mosquitto with the shipped ``deploy/mosquitto`` config and ACL
   (TLS, certificates from the fleet CA), SeaweedFS (S3) and a throw-away
   PostgreSQL, all on 127.0.0.1 ephemeral ports (``tests/support``).
2. Registers ``--devices`` devices and runs one device-data worker
   (:class:`cloud_coordinator.devices.DeviceDataWorker`, default settings
   but 60 s windows) in this process.
3. Each device publishes ``--samples`` samples (QoS 1, 100 Hz timestamps,
   six IMU readings) over its own TLS connection, as fast as the broker
   acknowledges them, devices in turn.
   The worker is stopped meanwhile (its persistent session queues them in
   the broker), so publishing and committing are timed apart.
4. Starts the worker again and reports its rate: samples committed
   (written to the raw bucket, catalogued and acknowledged) per second from
   its start to the last acknowledgement, with the window objects written.

The baseline printed beside it is what a fleet needs: one device streaming
at 100 Hz is 100 samples/s, so the end-to-end rate divided by 100 is how
many 100 Hz devices one worker keeps up with (workers share the load
through the shared subscription). On a two-core host the publishers, the
broker, SeaweedFS, PostgreSQL and the worker share the CPU, so the figure
is a lower bound on what a worker does on its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloud_coordinator.broker import CloudMqttClient, MessageHandler
from cloud_coordinator.catalog import Device, PostgresCatalog
from cloud_coordinator.config import BrokerConfig
from cloud_coordinator.devices import (
    DeviceDataWorker,
    DeviceWorkerSettings,
)
from edge_agent.upload import BucketNames, S3Store
from tests.mqtt.mqtt_helpers import Observer
from tests.mqtt.test_broker_support import (
    deploy_broker_settings,
    make_fleet_pki,
)
from tests.support.certs import BROKER_NAME
from tests.support.mosquitto import run_mosquitto
from tests.support.postgres import run_postgres
from tests.support.seaweed import run_seaweed

SAMPLE_RATE_HZ = 100
# Hang guard for the whole run after publishing.
DRAIN_TIMEOUT_S = 600.0


def _payload(t_us: int, number: int) -> bytes:
    value = (number % 1000) / 1000.0
    readings = {
        f"{sensor}_{axis}": {"value": value, "unit": unit}
        for sensor, unit in (("acc", "g"), ("gyr", "deg/s"))
        for axis in "xyz"
    }
    document = {
        "schema": "device-sample/1",
        "ts": t_us,
        "ts_unit": "us",
        "readings": readings,
    }
    return json.dumps(document).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--samples", type=int, default=3000, help="per device")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="bench-devices-") as folder:
        work = Path(folder)
        devices = tuple(f"d-{n:03d}" for n in range(args.devices))
        fleet = make_fleet_pki(work / "pki", devices=devices)
        broker_settings = deploy_broker_settings(fleet)
        # Subscriptions in the broker log say when the worker listens.
        broker_settings = type(broker_settings)(
            template=f"{broker_settings.template}log_type subscribe\n"
        )
        with (
            run_mosquitto(work / "broker", broker_settings) as broker,
            run_seaweed(work / "seaweed") as seaweed,
            run_postgres() as postgres,
        ):
            catalog = PostgresCatalog(postgres.create_database("bench"))
            catalog.migrate()
            for device in devices:
                catalog.upsert_device(Device(device, f"rider-{device}"))
            suffix = uuid.uuid4().hex[:8]
            buckets = BucketNames(raw=f"raw-{suffix}")
            store = S3Store.connect(
                seaweed.endpoint_url,
                access_key_id=seaweed.access_key_id,
                secret_access_key=seaweed.secret_access_key,
                region=seaweed.region,
            )
            service = fleet.client("cloud-coordinator")
            broker_config = BrokerConfig(
                host="127.0.0.1",
                port=broker.port,
                ca_file=str(fleet.ca_file),
                cert_file=str(service.cert_file),
                key_file=str(service.key_file),
                tls_server_name=BROKER_NAME,
            )
            settings = DeviceWorkerSettings(
                worker_id="bench", window_s=60.0, quarantine_bucket=f"q-{suffix}"
            )

            def factory(handler: MessageHandler) -> CloudMqttClient:
                return CloudMqttClient(
                    broker_config,
                    client_id="cloud-coordinator-devices-bench",
                    handler=handler,
                    subscriptions=[(settings.subscription, 1)],
                    manual_ack=True,
                    session_expiry_s=3600,
                )

            # Create the worker's session, then stop it: the samples queue in
            # the broker and the worker is timed on its own when it returns.
            worker = DeviceDataWorker(settings, store, catalog, buckets, factory)
            stop = threading.Event()
            thread = threading.Thread(target=worker.run, args=(stop,))
            thread.start()
            subscribed = f"cloud-coordinator-devices-bench 1 {settings.subscription}"
            while subscribed not in broker.log_text():
                time.sleep(0.05)
            stop.set()
            thread.join()

            start_us = int(
                (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).timestamp() * 1e6
            )
            step_us = 1_000_000 // SAMPLE_RATE_HZ
            total = args.devices * args.samples
            began = time.monotonic()
            for device in devices:
                publisher = Observer(
                    broker.port,
                    [],
                    tls=(fleet, fleet.client(device)),  # type: ignore[arg-type]
                )
                mids = [
                    publisher.publish(
                        f"devices/{device}/data", _payload(start_us + n * step_us, n)
                    )
                    for n in range(args.samples)
                ]
                for mid in mids:
                    publisher.wait_puback(mid, DRAIN_TIMEOUT_S)
                publisher.close()
            published_s = time.monotonic() - began

            worker = DeviceDataWorker(settings, store, catalog, buckets, factory)
            stop = threading.Event()
            thread = threading.Thread(target=worker.run, args=(stop,))
            began = time.monotonic()
            thread.start()
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            while worker.stats.acknowledged < total:
                if time.monotonic() > deadline:
                    raise TimeoutError("worker did not drain the samples")
                time.sleep(0.05)
            drained_s = time.monotonic() - began
            stop.set()
            thread.join()
            catalog.close()

    stats = worker.stats
    rate = stats.samples_committed / drained_s
    print(f"devices {args.devices}, samples {total} (6 readings each), TLS QoS 1")
    print(f"published:  {total / published_s:10.0f} samples/s ({published_s:.1f} s)")
    print(
        f"committed:  {rate:10.0f} samples/s by the worker ({drained_s:.1f} s); "
        f"{stats.samples_committed} samples, {stats.windows_written} window "
        f"writes in {stats.flushes} flushes, {stats.malformed_total} refused"
    )
    print(
        f"baseline:   one 100 Hz device = {SAMPLE_RATE_HZ} samples/s -> this "
        f"worker keeps up with {rate / SAMPLE_RATE_HZ:.0f} such devices"
    )
    return 0 if stats.samples_committed == total else 1


if __name__ == "__main__":
    sys.exit(main())
