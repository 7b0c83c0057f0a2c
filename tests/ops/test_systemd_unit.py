"""The systemd unit: systemd-analyze accepts it; it says what the agent needs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from ops_helpers import EDGE_AGENT

from edge_agent.cli.exit_codes import ExitCode

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "edge-agent.service"
SYSUSERS = UNIT.with_name("edge-agent.sysusers.conf")
INSTALLED_BINARY = "/opt/edge-agent/bin/edge-agent"
# systemd-analyze security's exposure scale times ten: 1.6 today. A change
# that loosens the sandbox noticeably fails here.
MAX_EXPOSURE = 25

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed"
    ),
]


def _local_copy(tmp_path: Path) -> Path:
    """Return the unit with ExecStart pointing at this checkout's entry point."""
    text = UNIT.read_text()
    assert INSTALLED_BINARY in text
    copy = tmp_path / "edge-agent.service"
    copy.write_text(text.replace(INSTALLED_BINARY, str(EDGE_AGENT)))
    return copy


def _service_section() -> dict[str, list[str]]:
    """Return the [Service] settings, each key with all its values."""
    values: dict[str, list[str]] = {}
    section = None
    for line in UNIT.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("["):
            section = stripped
            continue
        key, _, value = stripped.partition("=")
        if section == "[Service]":
            values.setdefault(key, []).append(value)
    return values


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    copy = _local_copy(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    complaints = [line for line in result.stderr.splitlines() if copy.name in line]
    assert complaints == []


def test_systemd_analyze_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    copy = _local_copy(tmp_path)
    copy.write_text(copy.read_text().replace(str(EDGE_AGENT), "/nonexistent/agent"))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "/nonexistent/agent" in result.stderr


def test_the_sandbox_stays_tight(tmp_path: Path) -> None:
    copy = _local_copy(tmp_path)
    result = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=yes",
            f"--threshold={MAX_EXPOSURE}",
            str(copy),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


def test_unit_settings_match_the_agent() -> None:
    service = _service_section()

    def one(key: str) -> str:
        (value,) = service[key]
        return value

    assert one("Type") == "notify"
    assert one("NotifyAccess") == "main"
    assert int(one("WatchdogSec")) > 0
    assert one("Restart") == "on-failure"
    assert one("RestartPreventExitStatus") == str(int(ExitCode.CONFIG_ERROR))
    assert one("ExecStart").endswith("run --config /etc/edge-agent/agent.toml")
    assert one("User") == "edge-agent"
    assert one("SupplementaryGroups") == "bluetooth"
    assert one("CapabilityBoundingSet") == ""
    assert one("ProtectSystem") == "strict"
    assert one("ReadWritePaths") == "/var/lib/edge-agent"
    assert one("PrivateTmp") == "yes"
    assert one("NoNewPrivileges") == "yes"
    assert set(one("RestrictAddressFamilies").split()) == {
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
        "AF_BLUETOOTH",
    }
    # The sysusers file creates the user the unit runs as.
    assert "u edge-agent " in SYSUSERS.read_text()
