"""Gateway configuration: the example parses; errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.config import ConfigError, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "edge-agent.example.toml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_example_configuration_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.gateway_id == "gw-garage-01"
    assert config.store.kind == "s3"
    assert config.identity("SUIT-0001") is not None


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('[gateway]\nworkdir = "/x"\n', ["[gateway] id"]),
        (
            '[gateway]\nid = "g"\n[store]\nkind = "ftp"\n',
            ["[store] kind", "'ftp'", "s3"],
        ),
        ('[gateway]\nid = "g"\n[ble]\nscan_timeout_s = "soon"\n', ["scan_timeout_s"]),
        ('[gateway]\nid = "g"\n[ble]\nscan_secs = 3\n', ["unknown key 'scan_secs'"]),
        (
            '[gateway]\nid = "g"\n[suits.S1]\nrider_id = "r"\nuser_type = "vip"\n',
            ["[suits.S1] user_type", "professional"],
        ),
        ('[gateway\nid = "g"\n', ["not valid TOML"]),
        (
            '[gateway]\nid = "g"\n[processing]\ngzip_level = 42\n',
            ["gzip_level", "0..9"],
        ),
        ('[gateway]\nid = "g"\n[ble]\nscan_timeout_s = nan\n', ["finite"]),
    ],
)
def test_errors_name_the_key_and_allowed_values(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message or "environment" in message
    for fragment in fragments:
        assert fragment in message


def test_environment_overrides_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, '[gateway]\nid = "g"\n')
    monkeypatch.setenv("EDGE_AGENT_BLE_SCAN_TIMEOUT_S", "2.5")
    monkeypatch.setenv("EDGE_AGENT_STORE_KIND", "s3")
    config = load_config(path)
    assert config.ble.scan_timeout_s == 2.5
    assert config.store.kind == "s3"

    monkeypatch.setenv("EDGE_AGENT_STORE_KIND", "tape")
    with pytest.raises(ConfigError, match="allowed values"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", False), ("no", False), ("OFF", False), ("false", False), ("1", True)],
)
def test_environment_booleans_mean_what_they_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: bool
) -> None:
    path = _write(tmp_path, '[gateway]\nid = "g"\n')
    monkeypatch.setenv("EDGE_AGENT_PROCESSING_TRAINING_WINDOWS", text)
    assert load_config(path).processing.training_windows is expected


def test_environment_errors_name_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, '[gateway]\nid = "g"\n')
    monkeypatch.setenv("EDGE_AGENT_GATING_PULL_REQUIRES_CHARGING", "perhaps")
    with pytest.raises(ConfigError, match="EDGE_AGENT_GATING_PULL_REQUIRES_CHARGING"):
        load_config(path)


def test_a_file_that_is_not_utf8_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_bytes(b"\xff\xfe[gateway]\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)
