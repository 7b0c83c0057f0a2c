"""Configuration loading and the cloud-coordinator command line, end to end."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cloud_helpers import T0, store_log

from cloud_coordinator.catalog import Rider, UserType
from cloud_coordinator.catalog.schema import POSTGRES_MIGRATIONS
from cloud_coordinator.cli import (
    EXIT_CATALOG,
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_USAGE,
    main,
)
from cloud_coordinator.config import ConfigError, load_config
from cloud_coordinator.wiring import build_catalog, build_store, build_verifier
from tests.support.postgres import PostgresServer

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Bound on the API server's start-up (imports, migrations, bind).
SERVER_START_TIMEOUT_S = 60.0
SERVER_STOP_TIMEOUT_S = 30.0
HTTP_TIMEOUT_S = 10.0


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_file_values_and_overrides(tmp_path: Path) -> None:
    defaults = load_config(None, env={})
    assert defaults.api.port == 8080 and defaults.catalog.url == "sqlite:catalog.db"
    assert defaults.buckets.raw == "raw" and defaults.retention.raw_days == 14.0
    config_file = _write(
        tmp_path / "cloud.toml",
        """
        [api]
        port = 9000
        max_page_limit = 200
        [catalog]
        url = "sqlite:data/catalog.db"
        [store]
        root = "objects"
        [buckets]
        raw = "raw-data"
        [retention]
        raw_days = 28
        """,
    )
    env = {
        "CLOUD_COORDINATOR_API_PORT": "9100",
        "CLOUD_COORDINATOR_AUTH_ISSUER": "acme",
    }
    config = load_config(config_file, env=env)
    assert config.api.port == 9100 and config.api.max_page_limit == 200
    assert config.auth.issuer == "acme" and config.buckets.raw == "raw-data"
    assert config.retention.raw_days == 28.0
    assert config.catalog_url == f"sqlite:{tmp_path / 'data' / 'catalog.db'}"
    assert config.path(config.store.root) == tmp_path / "objects"


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[nonsense]\n", {}, r"unknown sections \['nonsense'\]"),
        ("[api]\nprot = 1\n", {}, r"\[api\] unknown keys \['prot'\]"),
        ('[api]\nport = "eighty"\n', {}, r"\[api\] port = 'eighty': expected int"),
        ("[api]\nport = true\n", {}, "expected int"),
        ('[store]\nkind = "ftp"\n', {}, "allowed values"),
        ("[api]\nmax_page_limit = 5000\n", {}, "max_page_limit = 5000"),
        ("[api]\ndefault_page_limit = 600\n", {}, "default_page_limit"),
        ('[api]\ntls_cert_file = "c.pem"\n', {}, "go together"),
        ("[downloads]\nurl_ttl_s = 86400\n", {}, "url_ttl_s = 86400"),
        ('[auth]\nalgorithm = "ES256"\n', {}, "public_key_file"),
        ("[retention]\nraw_days = -1\n", {}, "raw_days"),
        ("[retention]\nraw_days = nan\n", {}, "finite"),
        ("[retention]\nraw_days = 1e308\n", {}, "raw_days"),
        ("", {"CLOUD_COORDINATOR_RETENTION_RAW_DAYS": "inf"}, "finite"),
        ("port = [", {}, "not valid TOML"),
        ("", {"CLOUD_COORDINATOR_API_PORT": "x"}, "environment CLOUD_COORDINATOR"),
        (
            "",
            {"CLOUD_COORDINATOR_API_MAX_PAGE_LIMIT": "5000"},
            "with CLOUD_COORDINATOR_API_MAX_PAGE_LIMIT from the environment",
        ),
    ],
)
def test_configuration_errors_name_the_key(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path / "c.toml", text), env=env)


def test_keygen_token_and_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = _write(tmp_path / "c.toml", "[api]\nport = 9000\n")
    assert main(["--config", str(config_file), "keygen"]) == EXIT_OK
    assert (tmp_path / "keys" / "token-secret").exists()
    capsys.readouterr()
    code = main(
        ["--config", str(config_file), "token", "--sub", "r1", "--role", "rider"]
    )
    assert code == EXIT_OK
    token = capsys.readouterr().out.strip()
    principal = build_verifier(load_config(config_file, env={})).verify(token)
    assert principal.subject == "r1" and principal.role.value == "rider"
    too_long = ["token", "--sub", "r1", "--role", "rider", "--ttl-s", "99999999"]
    assert main(["--config", str(config_file), *too_long]) == EXIT_USAGE
    assert main(["--config", str(config_file), "keygen"]) == EXIT_CONFIG  # exists
    bad = _write(tmp_path / "bad.toml", "[api]\nport = -3\n")
    assert main(["--config", str(bad), "migrate"]) == EXIT_CONFIG
    with pytest.raises(SystemExit) as usage:
        main(["token", "--sub", "r1", "--role", "emperor"])
    assert usage.value.code == EXIT_USAGE


def test_migrate_on_postgres_and_unreachable_catalog(
    tmp_path: Path, postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres_server.create_database("cli")
    config_file = _write(
        tmp_path / "c.toml", f'[catalog]\nurl = "{url}"\nschema = "suitlink"\n'
    )
    versions = [migration.version for migration in POSTGRES_MIGRATIONS]
    assert main(["--config", str(config_file), "migrate"]) == EXIT_OK
    assert (
        f"schema version {versions[-1]}; applied {versions}" in capsys.readouterr().out
    )
    assert main(["--config", str(config_file), "migrate"]) == EXIT_OK
    assert "applied none" in capsys.readouterr().out
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    dead = _write(
        tmp_path / "dead.toml",
        f'[catalog]\nurl = "postgresql://postgres@127.0.0.1:{dead_port}/x"\n',
    )
    assert main(["--config", str(dead), "migrate"]) == EXIT_CATALOG


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def api_server(
    tmp_path: Path, postgres_server: PostgresServer
) -> Iterator[tuple[str, Path]]:
    """Run `cloud-coordinator api --workers 2` on PostgreSQL and a local store."""
    port = _free_port()
    url = postgres_server.create_database("api")
    config_file = _write(
        tmp_path / "cloud.toml",
        f'[api]\nhost = "127.0.0.1"\nport = {port}\n'
        f'[catalog]\nurl = "{url}"\n[store]\nroot = "store"\n',
    )
    assert main(["--config", str(config_file), "keygen"]) == EXIT_OK
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    with open(tmp_path / "api.log", "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cloud_coordinator.cli",
                "--config",
                str(config_file),
                "api",
                "--workers",
                "2",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    try:
        while True:
            assert process.poll() is None, (tmp_path / "api.log").read_text()
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "API did not start"
            time.sleep(0.1)
        yield base, config_file
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=SERVER_STOP_TIMEOUT_S)


def test_api_command_serves_over_http(
    api_server: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, config_file = api_server
    config = load_config(config_file, env={})
    catalog, store = build_catalog(config), build_store(config)
    rider = catalog.upsert_rider(Rider("r1", UserType.PRIVATE))
    stored = store_log(store, catalog, config.buckets, rider=rider, suit="S1", start=T0)
    catalog.close()
    capsys.readouterr()
    main(["--config", str(config_file), "token", "--sub", "r1", "--role", "rider"])
    headers = {"Authorization": f"Bearer {capsys.readouterr().out.strip()}"}
    with httpx.Client(base_url=base, headers=headers, timeout=HTTP_TIMEOUT_S) as http:
        assert http.get("/ready").json()["status"] == "ready"
        listed = http.get("/api/v1/objects", params={"kind": "raw"}).json()
        assert [item["log_id"] for item in listed["items"]] == [stored.log]
        analytics = http.get(f"/api/v1/logs/{stored.log}/analytics")
        assert json.loads(analytics.content) == stored.analytics
        link = http.get(f"/api/v1/objects/{listed['items'][0]['object_id']}/download")
        download = httpx.get(link.json()["url"], timeout=HTTP_TIMEOUT_S)
        assert download.content == stored.csv_gz
        assert (
            http.get("/api/v1/me", headers={"Authorization": "Bearer x"}).status_code
            == 401
        )
