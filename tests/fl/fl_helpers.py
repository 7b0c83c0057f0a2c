"""Real Flower processes on loopback and emulated gateways for the FL tests.

A SuperLink and SuperNodes run as subprocesses of the test (each in its own
process group, so the ServerApp / ClientApp children they spawn stop with
them), on ephemeral loopback ports, with ``FLWR_HOME`` inside the test's
temporary folder; each is killed when the test ends or after its timeout.

An emulated gateway is what a SuperNode's ClientApp reads: a window store
filled from synthesised rides (positives from their airbag-time impacts),
an ``agent-state.json`` saying idle, and a fake ``/sys/class/power_supply``
tree the test can switch to battery.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge_agent.fl.store import WindowStore
from models import dataset, evaluation
from models.head import ModelHead
from models.metadata import DecisionRule
from models.registry import load_model_info, metadata_path_for, shipped_model
from models.runtime import CrashModelRunner

__all__ = [
    "EmulatedGateway",
    "FlowerProcess",
    "Shift",
    "event_figures_for",
    "free_port",
    "make_gateway",
    "prepare_model",
    "start_superlink",
    "start_supernode",
    "wait_for",
]

VENV_BIN = Path(sys.executable).parent
# Rides of 90 s riding: long enough for a crash and normal riding, short
# enough that 3 gateways x 24 rides synthesise in a few seconds.
RIDING_S = 90.0
PROCESS_STOP_S = 10.0


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1 (closed again at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(
    predicate: object, timeout_s: float, what: str, poll_s: float = 0.5
) -> None:
    """Poll ``predicate()`` until true; fail naming ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


@dataclass
class FlowerProcess:
    """One Flower server process and its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """Return what the process logged so far."""
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        """Return whether the process still runs."""
        return self.process.poll() is None

    def stop(self) -> None:
        """Stop the process group: SIGTERM, then SIGKILL after a timeout."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(PROCESS_STOP_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(PROCESS_STOP_S)


def _environment(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["FLWR_HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def _spawn(
    name: str, command: list[str], workdir: Path, env: dict[str, str]
) -> FlowerProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return FlowerProcess(name, process, log_path)


@dataclass(frozen=True)
class TlsFiles:
    """Server certificate, key and CA for the SuperLink's TLS."""

    ca: Path
    cert: Path
    key: Path


def make_superlink_tls(folder: Path) -> TlsFiles:
    """Write a test CA and a SuperLink certificate for localhost and 127.0.0.1.

    The SuperLink's own ServerApp process connects back to it by IP, so the
    certificate names the loopback address as well as ``localhost``.
    """
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("suitlink FL test CA"))
        .issuer_name(name("suitlink FL test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(
        folder / "ca.pem", folder / "superlink.pem", folder / "superlink.key"
    )
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.key.chmod(0o600)
    return files


def start_superlink(
    workdir: Path,
    *,
    tls: TlsFiles | None = None,
    node_auth: bool = False,
) -> tuple[FlowerProcess, str]:
    """Start a SuperLink; return it and its address (one port for all APIs).

    Without ``tls`` it runs with ``--insecure`` (loopback tests only).
    """
    port = free_port()
    command = [
        str(VENV_BIN / "flower-superlink"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--disable-runtime-dependency-installation",
        "--database",
        str(workdir / "superlink.db"),
    ]
    if tls is None:
        command.append("--insecure")
    else:
        command += [
            "--ssl-ca-certfile",
            str(tls.ca),
            "--ssl-certfile",
            str(tls.cert),
            "--ssl-keyfile",
            str(tls.key),
        ]
    if node_auth:
        command.append("--enable-supernode-auth")
    process = _spawn("superlink", command, workdir, _environment(workdir / "flwr-home"))
    wait_for(
        lambda: "Application startup complete" in process.log() or not process.alive(),
        60,
        "the SuperLink to start",
    )
    assert process.alive(), process.log()
    return process, f"127.0.0.1:{port}"


def node_config_argument(config: dict[str, object]) -> str:
    """Return ``--node-config`` text: space-separated TOML ``key=value`` pairs."""
    parts = []
    for key, value in config.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = repr(value)
        else:
            text = json.dumps(str(value))
        parts.append(f"{key}={text}")
    return " ".join(parts)


def start_supernode(
    workdir: Path,
    name: str,
    superlink: str,
    node_config: dict[str, object],
    *,
    root_certificates: Path | None = None,
    private_key: Path | None = None,
) -> FlowerProcess:
    """Start a SuperNode connected to ``superlink`` with ``node_config``."""
    command = [
        str(VENV_BIN / "flower-supernode"),
        "--superlink",
        superlink,
        "--port",
        str(free_port()),
        "--node-config",
        node_config_argument(node_config),
    ]
    if root_certificates is None:
        command.append("--insecure")
    else:
        command += ["--root-certificates", str(root_certificates)]
    if private_key is not None:
        command += ["--auth-supernode-private-key", str(private_key)]
    home = workdir / f"flwr-home-{name}"
    return _spawn(name, command, workdir, _environment(home))


# -- the model --------------------------------------------------------------


def prepare_model(folder: Path) -> Path:
    """Copy the shipped model into ``folder``; return the ``.tflite`` path.

    The metadata must carry the head (``models.head``). An older shipped
    metadata without it gets the head recovered from the model itself:
    ``logit(crash_probability)`` is exactly ``embedding @ kernel + bias``, so
    a least-squares fit over synthetic windows returns the weights.
    """
    info = shipped_model()
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / info.path.name
    shutil.copyfile(info.path, model)
    metadata = json.loads(info.metadata_path.read_text())
    if "head" not in metadata:
        runner = CrashModelRunner.from_info(info)
        rides = [dataset.ride_windows(spec) for spec in _specs(range(777000, 777006))]
        outputs = runner.predict(np.concatenate([r.windows for r in rides]))
        p = outputs.probability.astype(np.float64)
        keep = (p > 1e-5) & (p < 1 - 1e-5)
        z = np.log(p[keep] / (1 - p[keep]))
        x = np.hstack([outputs.embedding[keep], np.ones((int(keep.sum()), 1))])
        solution, *_ = np.linalg.lstsq(x, z, rcond=None)
        metadata["head"] = {
            "kernel": [float(v) for v in solution[:-1]],
            "bias": float(solution[-1]),
        }
    metadata_path_for(model).write_text(json.dumps(metadata, indent=2))
    load_model_info(model)
    return model


# -- emulated gateways --------------------------------------------------------


@dataclass(frozen=True)
class Shift:
    """A sensor mounted differently: rotation of the axes and accel gain error."""

    rotation: npt.NDArray[np.float64] = field(default_factory=lambda: np.eye(3))
    accel_gain: float = 1.0

    @classmethod
    def flipped_mount(cls, accel_gain: float) -> Shift:
        """Return the sensor turned over about its x axis, with a gain error."""
        return cls(np.diag([1.0, -1.0, -1.0]), accel_gain)

    def apply(self, windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Return ``windows`` as the shifted sensor would have recorded them."""
        accel = windows[..., :3] @ self.rotation.T * self.accel_gain
        gyro = windows[..., 3:] @ self.rotation.T
        return np.concatenate([accel, gyro], axis=-1).astype(np.float32)


def _specs(
    seeds: Sequence[int],
) -> list[dataset.RideSpec]:  # type: ignore[name-defined]
    return [replace(spec, riding_s=RIDING_S) for spec in dataset.plan_rides(seeds)]


@dataclass
class EmulatedGateway:
    """Files a SuperNode's ClientApp reads, and held-out rides for scoring."""

    name: str
    root: Path
    store_path: Path
    power_root: Path
    heldout: list[dataset.RideWindows]  # type: ignore[name-defined]
    shift: Shift | None

    def node_config(self, model: Path, **extra: object) -> dict[str, object]:
        """Return the SuperNode's ``--node-config`` for this gateway."""
        return {
            "gateway-id": self.name,
            "window-store": str(self.store_path),
            "model": str(model),
            "agent-workdir": str(self.root / "agent"),
            "power-supply-root": str(self.power_root),
            "min-windows": 100,
            **extra,
        }

    def set_external_power(self, online: bool) -> None:
        """Plug or unplug the gateway's (and the dock's) mains supply."""
        (self.power_root / "AC" / "online").write_text("1\n" if online else "0\n")
        status = "Charging" if online else "Discharging"
        (self.power_root / "BAT0" / "status").write_text(f"{status}\n")

    def heldout_windows(
        self,
        ride: dataset.RideWindows,  # type: ignore[name-defined]
    ) -> npt.NDArray[np.float32]:
        """Return a held-out ride's windows as this gateway's sensor sees them."""
        return ride.windows if self.shift is None else self.shift.apply(ride.windows)


def make_gateway(
    root: Path,
    name: str,
    seeds: Sequence[int],
    heldout_seeds: Sequence[int],
    *,
    shift: Shift | None = None,
    flip_labels: bool = False,
    copies: int = 1,
) -> EmulatedGateway:
    """Synthesise a gateway's rides into its window store and set it up idle.

    ``flip_labels`` stores crash windows as normal and a sample of normal
    windows as crashes (a gateway whose labels are garbage); ``copies``
    stores every ride that many times (it claims more data than it has).
    """
    folder = root / name
    store_path = folder / "buffer" / "fl-windows.db"
    with WindowStore(store_path, max_windows=20_000) as store:
        for ride in (dataset.ride_windows(s) for s in _specs(seeds)):
            windows = ride.windows if shift is None else shift.apply(ride.windows)
            offsets = [] if ride.impact_s is None else [ride.impact_s]
            if flip_labels:
                # Impacts moved to random riding windows: crashes get labelled
                # normal and arbitrary riding labelled crash.
                rng = np.random.default_rng(ride.seed)
                offsets = list(rng.uniform(10.0, ride.starts_s[-1], size=3))
            for copy in range(copies):
                store.add_log(
                    log_id=f"{name}-{ride.seed}-{copy}",
                    rider_id=f"rider-{name}",
                    windows=windows,
                    starts_s=ride.starts_s,
                    airbag_offsets_s=offsets,
                )
    agent = folder / "agent"
    agent.mkdir(parents=True, exist_ok=True)
    (agent / "agent-state.json").write_text(
        json.dumps({"schema": "edge-agent-state/1", "activity": "idle"})
    )
    power = folder / "power"
    (power / "AC").mkdir(parents=True, exist_ok=True)
    (power / "BAT0").mkdir(parents=True, exist_ok=True)
    (power / "AC" / "type").write_text("Mains\n")
    (power / "BAT0" / "type").write_text("Battery\n")
    gateway = EmulatedGateway(
        name=name,
        root=folder,
        store_path=store_path,
        power_root=power,
        heldout=[dataset.ride_windows(s) for s in _specs(heldout_seeds)],
        shift=shift,
    )
    gateway.set_external_power(True)
    return gateway


def event_figures_for(
    gateway: EmulatedGateway,
    runner: CrashModelRunner,
    head: ModelHead,
    threshold: float,
) -> evaluation.EventFigures:
    """Return crash recall and false alarms of ``head`` on the held-out rides."""
    scores = []
    for ride in gateway.heldout:
        embedding = runner.predict(gateway.heldout_windows(ride)).embedding
        scores.append(
            evaluation.RideScores(
                head.probability(embedding), ride.starts_s, ride.impact_s, ride.riding_s
            )
        )
    return evaluation.event_figures(scores, DecisionRule(threshold, 1))
