"""One process per adapter: the lock, across real processes; bond files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge_agent.transfer import (
    AdapterBusyError,
    AdapterLock,
    BondFileError,
    BondStore,
    SuitBond,
)
from firmware_bridge.ble.keystore import BondKeyStore

pytestmark = pytest.mark.timeout(60)

# Bound on the helper process's start-up and exit.
CHILD_TIMEOUT_S = 20.0

_HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from edge_agent.transfer import AdapterLock

    with AdapterLock(sys.argv[1], runtime_dir=Path(sys.argv[2])):
        print("locked", flush=True)
        sys.stdin.readline()
    """
)


def _start_holder(adapter: str, runtime_dir: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, adapter, str(runtime_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "locked"
    return child


def test_second_instance_is_refused_while_the_first_holds_the_adapter(
    tmp_path: Path,
) -> None:
    child = _start_holder("hci0", tmp_path)
    try:
        with pytest.raises(AdapterBusyError) as busy:
            AdapterLock("hci0", runtime_dir=tmp_path).acquire()
        assert busy.value.adapter == "hci0"
        assert busy.value.holder_pid == child.pid
        assert f"hci0 is in use by pid {child.pid}" in str(busy.value)
        assert str(tmp_path / "ble-hci0.lock") in str(busy.value)

        with AdapterLock("hci1", runtime_dir=tmp_path) as other:
            assert other.held, "another adapter is another lock"
    finally:
        assert child.stdin is not None
        child.stdin.write("done\n")
        child.stdin.close()
        assert child.wait(CHILD_TIMEOUT_S) == 0

    with AdapterLock("hci0", runtime_dir=tmp_path) as lock:
        assert lock.held
        assert (tmp_path / "ble-hci0.lock").read_text() == f"{os.getpid()}\n"


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    adapter = "tcp-client:127.0.0.1:6402"
    child = _start_holder(adapter, tmp_path)
    child.send_signal(signal.SIGKILL)
    child.wait(CHILD_TIMEOUT_S)
    assert child.stdin is not None and child.stdout is not None
    child.stdin.close()
    child.stdout.close()

    lock = AdapterLock(adapter, runtime_dir=tmp_path)
    assert lock.path.name == "ble-tcp-client_127.0.0.1_6402.lock"
    with lock, pytest.raises(AdapterBusyError):
        AdapterLock(adapter, runtime_dir=tmp_path).acquire()
    assert not lock.held


def test_fallback_dir_is_used_when_no_runtime_dir_is_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "systemd"))
    assert AdapterLock("hci0").path == tmp_path / "systemd" / "ble-hci0.lock"


def test_bond_store_file_is_private_and_reread_after_another_writer(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ble" / "bonds.json"
    agent_view = BondStore(path)
    assert agent_view.bonds() == []

    BondStore(path).put(SuitBond("SN1", "C0:00:00:00:01:00", bytes(range(32))))

    bond = agent_view.get("SN1")
    assert bond is not None and bond.release_key == bytes(range(32))
    assert path.stat().st_mode & 0o777 == 0o600
    assert "release_key" not in repr(bond)
    assert agent_view.remove("SN1") and BondStore(path).get("SN1") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not JSON at line 1"),
        ('{"schema": "other/1"}', "field 'schema': expected 'suit-bonds/1'"),
        (
            json.dumps({"schema": "suit-bonds/1", "suits": {"SN1": {"address": "x"}}}),
            "suit 'SN1': field 'release_key'",
        ),
    ],
)
def test_bad_bond_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bonds.json"
    path.write_text(text)
    with pytest.raises(BondFileError, match=message) as caught:
        BondStore(path)
    assert str(path) in str(caught.value)


def test_bad_radio_keystore_is_named(tmp_path: Path) -> None:
    path = tmp_path / "radio-keys.json"
    path.write_text(json.dumps({"schema": "ble-bonds/1", "peers": {"A": {}}}))
    with pytest.raises(BondFileError, match="bad entry: KeyError"):
        BondKeyStore(path)


def test_gateway_transfer_imports_without_the_emulation_extra() -> None:
    blocker = textwrap.dedent(
        """
        import sys

        class NoBumble:
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] == "bumble":
                    raise ImportError(f"{name} is not installed on a gateway")

        sys.meta_path.insert(0, NoBumble())
        import edge_agent.transfer
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", blocker],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
