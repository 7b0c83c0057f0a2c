"""``edge-agent pair`` and ``enrol``: safe config edits, live checks."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest
from ops_helpers import free_port

from edge_agent.cli.cmd_enrol import check_broker, check_object_store
from edge_agent.cli.cmd_pair import set_table_values
from edge_agent.cli.exit_codes import ExitCode
from edge_agent.cli.main import main
from edge_agent.config import ConfigError, load_config
from edge_agent.mqtt import MqttConfig
from tests.support.certs import BROKER_NAME, make_pki
from tests.support.mosquitto import BrokerSettings, TlsListener, run_mosquitto
from tests.support.seaweed import SeaweedS3

pytestmark = pytest.mark.timeout(180)

COMMENTED = """\
# Garage gateway, installed 2026-03-01.
[gateway]
id = "gw-old"          # renamed at enrolment
workdir = "/var/lib/edge-agent"

[store]
kind = "local"

[suits.SUIT-0001]   # Anna's suit
rider_id = "r-1"    # from the rider app
user_type = "private"
"""


def _pair(config: Path, suit: str, rider: str, *extra: str) -> int:
    return main(
        [
            "pair",
            "--config",
            str(config),
            "--suit",
            suit,
            "--rider",
            rider,
            "--user-type",
            "professional",
            "--product",
            "extended",
            *extra,
        ]
    )


def test_pair_updates_in_place_and_keeps_comments(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(COMMENTED)
    config.chmod(0o640)

    assert _pair(config, "SUIT-0001", "r-7") == ExitCode.OK
    assert _pair(config, "SUIT 0002", "r-8") == ExitCode.OK

    text = config.read_text()
    assert "# Garage gateway, installed 2026-03-01." in text
    assert (
        '[suits.SUIT-0001]   # Anna\'s suit\nrider_id = "r-7"    # from the rider app'
        in text
    )
    assert '[suits."SUIT 0002"]' in text
    loaded = load_config(config)
    first, second = loaded.identity("SUIT-0001"), loaded.identity("SUIT 0002")
    assert first is not None and first.rider_id == "r-7"
    assert (first.user_type, first.product) == ("professional", "extended")
    assert second is not None and second.rider_id == "r-8"
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["agent.toml"]


def test_pair_refuses_an_edit_it_cannot_make_safely(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    inline = '[gateway]\nid = "g"\n\n[suits]\nSUIT-1 = { rider_id = "r" }\n'
    config.write_text(inline)
    with pytest.raises(ConfigError, match=r"\[suits.SUIT-1\].*by hand"):
        set_table_values(inline, ("suits", "SUIT-1"), {"rider_id": "x"}, str(config))
    assert _pair(config, "SUIT-1", "x") == ExitCode.CONFIG_ERROR
    assert config.read_text() == inline


def test_pair_rejects_bad_ids_and_a_missing_file(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    assert _pair(config, "SUIT-1", "r") == ExitCode.CONFIG_ERROR
    config.write_text(COMMENTED)
    assert _pair(config, "SUIT-1", " r ") == ExitCode.CONFIG_ERROR
    assert _pair(config, "SUIT-1", "r\n") == ExitCode.CONFIG_ERROR
    assert config.read_text() == COMMENTED


def test_enrol_writes_a_new_file_and_checks_the_local_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "etc" / "agent.toml"
    workdir = tmp_path / "var"
    code = main(
        [
            "enrol",
            "--config",
            str(config),
            "--gateway-id",
            "gw-new",
            "--workdir",
            str(workdir),
        ]
    )
    out = capsys.readouterr().out
    assert code == ExitCode.OK, out
    assert "PASS  object store local:" in out
    loaded = load_config(config)
    assert loaded.gateway_id == "gw-new"
    assert loaded.workdir == workdir
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    # The probe object was deleted again.
    assert not list((workdir / "store" / "raw").rglob("*.txt"))


@pytest.mark.s3
def test_enrol_checks_the_s3_store_live_and_keeps_the_rest(
    tmp_path: Path,
    seaweed_s3: SeaweedS3,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(COMMENTED)
    monkeypatch.setenv("EDGE_AGENT_STORE_ACCESS_KEY_ID", seaweed_s3.access_key_id)
    monkeypatch.setenv(
        "EDGE_AGENT_STORE_SECRET_ACCESS_KEY", seaweed_s3.secret_access_key
    )
    bucket = seaweed_s3.new_bucket("enrol")
    text = set_table_values(COMMENTED, ("store",), {"raw_bucket": bucket})
    config.write_text(text)

    code = main(
        [
            "enrol",
            "--config",
            str(config),
            "--gateway-id",
            "gw-garage-02",
            "--store-endpoint",
            seaweed_s3.endpoint_url,
            "--store-region",
            seaweed_s3.region,
        ]
    )
    out = capsys.readouterr().out
    assert code == ExitCode.OK, out
    assert f"PASS  object store s3:{seaweed_s3.endpoint_url}" in out
    assert "put, HEAD and delete" in out
    listed = seaweed_s3.client().list_objects_v2(Bucket=bucket)
    assert listed.get("KeyCount", 0) == 0

    document = tomllib.loads(config.read_text())
    assert document["gateway"]["id"] == "gw-garage-02"
    assert document["store"]["endpoint_url"] == seaweed_s3.endpoint_url
    assert document["suits"]["SUIT-0001"]["rider_id"] == "r-1"
    assert "# renamed at enrolment" in config.read_text()


def test_enrol_reports_an_unreachable_store_and_broker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "agent.toml"
    store_port, broker_port = free_port(), free_port()
    code = main(
        [
            "enrol",
            "--config",
            str(config),
            "--gateway-id",
            "gw-offline",
            "--workdir",
            str(tmp_path / "var"),
            "--store-endpoint",
            f"http://127.0.0.1:{store_port}",
            "--broker",
            f"127.0.0.1:{broker_port}",
            "--timeout-s",
            "2",
        ],
    )
    out = capsys.readouterr().out
    assert code == ExitCode.STORE_UNAVAILABLE
    assert "FAIL  object store" in out
    assert f"FAIL  broker 127.0.0.1:{broker_port}: no TCP connection" in out
    # The file is written all the same, so the checks can be rerun later.
    assert load_config(config).store.endpoint_url == f"http://127.0.0.1:{store_port}"


def test_check_broker_connects_over_mqtt_plain_and_tls(tmp_path: Path) -> None:
    with run_mosquitto(tmp_path / "plain") as broker:
        plain = MqttConfig(
            enabled=True,
            host="127.0.0.1",
            port=broker.port,
            gateway_id="gw-1",
            tls=False,
        )
        tcp, mqtt = check_broker("127.0.0.1", broker.port, plain, timeout_s=5.0)
    assert tcp.passed and mqtt.passed, (tcp, mqtt)
    assert "gw-1-enrol-check" in mqtt.detail

    pki = make_pki(tmp_path / "pki", clients=("gw-1",))
    settings = BrokerSettings(
        tls=TlsListener(
            ca_file=pki.ca_file,
            cert_file=pki.server.cert_file,
            key_file=pki.server.key_file,
        )
    )
    with run_mosquitto(tmp_path / "tls", settings) as broker:
        pair = pki.client("gw-1")
        secure = MqttConfig(
            enabled=True,
            host="127.0.0.1",
            port=broker.port,
            gateway_id="gw-1",
            ca_file=str(pki.ca_file),
            cert_file=str(pair.cert_file),
            key_file=str(pair.key_file),
            tls_server_name=BROKER_NAME,
        )
        _tcp, accepted = check_broker("127.0.0.1", broker.port, secure, timeout_s=5.0)
        wrong_ca = MqttConfig(**{**secure.__dict__, "ca_file": str(pair.cert_file)})
        _tcp, refused = check_broker("127.0.0.1", broker.port, wrong_ca, timeout_s=5.0)
    assert accepted.passed, accepted
    assert "TLS" in accepted.detail
    assert not refused.passed


def test_check_object_store_names_the_failure(tmp_path: Path) -> None:
    # A store root that is a file: every bucket operation fails.
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    config = load_config(
        _write(tmp_path, f'[gateway]\nid = "g"\n[store]\nroot = "{blocked}"\n')
    )
    result = check_object_store(config)
    assert not result.passed
    assert "raw/_edge-agent-probe/g/" in result.detail


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_enrol_writes_the_broker_and_checks_an_mqtt_session(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "agent.toml"
    # The operator's TLS choice stays; enrol only adds where the broker is.
    config.write_text(COMMENTED + "\n[mqtt]\ntls = false   # closed test network\n")
    with run_mosquitto(tmp_path / "broker") as broker:
        code = main(
            [
                "enrol",
                "--config",
                str(config),
                "--gateway-id",
                "gw-mqtt",
                "--broker",
                f"127.0.0.1:{broker.port}",
            ]
        )
    out = capsys.readouterr().out
    assert code == ExitCode.OK, out
    assert f"PASS  broker 127.0.0.1:{broker.port}: TCP connection accepted" in out
    assert "MQTT session accepted (no TLS, gw-mqtt-enrol-check)" in out
    loaded = load_config(config)
    assert loaded.mqtt.enabled and not loaded.mqtt.tls
    assert (loaded.mqtt.host, loaded.mqtt.port) == ("127.0.0.1", broker.port)
    assert "tls = false   # closed test network" in config.read_text()
