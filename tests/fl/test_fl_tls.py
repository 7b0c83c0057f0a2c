"""Production settings on loopback: TLS everywhere and SuperNode authentication.

The SuperLink serves its APIs over TLS (a test CA) and accepts only
SuperNodes whose public key the coordinator registered through the Control
API (``cloud-coordinator fl register-node``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fl_helpers import (
    FlowerProcess,
    make_gateway,
    make_superlink_tls,
    start_superlink,
    start_supernode,
    wait_for,
)

from cloud_coordinator.catalog import SqliteCatalog
from cloud_coordinator.catalog.fl_records import RoundStatus, RunState
from cloud_coordinator.fl.control import ControlClient
from cloud_coordinator.fl.errors import ControlError
from cloud_coordinator.fl.runs import RunRequest, start_run
from models.registry import metadata_path_for

pytestmark = pytest.mark.timeout(300)


def _node_key(folder: Path, name: str) -> tuple[Path, Path]:
    """Write an OpenSSH EC key pair, as ``ssh-keygen -t ecdsa`` would."""
    key = ec.generate_private_key(ec.SECP384R1())
    private = folder / name
    public = folder / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    private.chmod(0o600)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
    )
    return private, public


@pytest.fixture
def processes() -> Iterator[list[FlowerProcess]]:
    started: list[FlowerProcess] = []
    yield started
    for process in started:
        process.stop()


def test_fl_tls_and_node_authentication(
    tmp_path: Path, fl_model: Path, processes: list[FlowerProcess]
) -> None:
    tls = make_superlink_tls(tmp_path / "tls")
    superlink, address = start_superlink(
        tmp_path / "superlink", tls=tls, node_auth=True
    )
    processes.append(superlink)

    # Without the CA, or without TLS, the Control API is not reachable.
    with pytest.raises(ControlError, match="root_certificates"):
        ControlClient(address)
    with (
        ControlClient(address, insecure=True) as plain,
        pytest.raises(ControlError, match="ListRuns failed"),
    ):
        plain.run_status(1)

    keys = tmp_path / "keys"
    keys.mkdir()
    known_key, known_pub = _node_key(keys, "gw-known")
    stranger_key, _ = _node_key(keys, "gw-stranger")
    with ControlClient(address, root_certificates=tls.ca) as control:
        node_id = control.register_node(known_pub, "gw-known")
    assert node_id > 0

    root = tmp_path / "gateways"
    known = make_gateway(root, "gw-known", range(990000, 990010), [])
    stranger = make_gateway(root, "gw-stranger", range(991000, 991010), [])
    model = fl_model
    processes.append(
        start_supernode(
            tmp_path / "nodes",
            "gw-known",
            address,
            known.node_config(model),
            root_certificates=tls.ca,
            private_key=known_key,
        )
    )
    intruder = start_supernode(
        tmp_path / "nodes",
        "gw-stranger",
        address,
        stranger.node_config(model),
        root_certificates=tls.ca,
        private_key=stranger_key,
    )
    processes.append(intruder)

    catalog = SqliteCatalog(tmp_path / "catalog.db")
    catalog.migrate()
    try:
        with ControlClient(address, root_certificates=tls.ca) as control:
            run = start_run(
                catalog,
                control,
                RunRequest(rounds=1, min_nodes=1),
                requested_by="test-rnd",
                base_config={
                    "catalog": f"sqlite:{tmp_path / 'catalog.db'}",
                    "initial-model": str(metadata_path_for(model)),
                    "query-timeout-s": 30.0,
                    "round-timeout-s": 180.0,
                },
            )

        def ended() -> bool:
            current = catalog.get_fl_run(run.run_key)
            return current is not None and current.state.finished

        wait_for(ended, 240, "the TLS run to end", 1.0)
        finished = catalog.get_fl_run(run.run_key)
        rounds = catalog.list_fl_rounds(run.run_key)
    finally:
        catalog.close()
    assert finished is not None and finished.state == RunState.FINISHED, (
        finished,
        superlink.log()[-3000:],
    )
    # Only the registered gateway took part; the stranger was never let in.
    assert [(r.status, r.participants) for r in rounds] == [(RoundStatus.AGGREGATED, 1)]
    assert "Receiving: train message" not in intruder.log()
    sys.stdout.write(f"stranger's SuperNode log tail:\n{intruder.log()[-600:]}\n")
