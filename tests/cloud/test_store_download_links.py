"""Download links on the second backend and encrypted stores; wiring; rewrap CLI.

Azure Blob (Azurite): the API hands out a read-only SAS for the one blob.
Client-side envelope encryption: the API's own signed blob route decrypts.
The wiring turns ``[store]`` settings of the cloud and the gateway into the
right store, encryption and link signer, and refuses contradictions.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import httpx
import pytest
from cloud_api_env import make_api_env
from cloud_helpers import ManualClock, store_log
from cloud_world import RIDERS

from cloud_coordinator import cli
from cloud_coordinator.api import AzureSasPresigner, LocalPresigner, S3Presigner
from cloud_coordinator.catalog import SqliteCatalog
from cloud_coordinator.config import ConfigError, load_config
from cloud_coordinator.wiring import build_presigner, build_store
from edge_agent.config import config_from_mapping
from edge_agent.service.gating import uplink_target
from edge_agent.service.runtime import build_store as build_gateway_store
from edge_agent.upload import (
    BodyChecksum,
    BucketNames,
    ChecksumMode,
    LocalDirStore,
    S3Store,
)
from edge_agent.upload.azure import AzureBlobStore
from edge_agent.upload.envelope import EnvelopeStore
from edge_agent.upload.keyring import FileKeyRing, key_id_of
from tests.support.azurite import AzuriteBlob, azurite_blob

__all__ = ["azurite_blob"]

HTTP_TIMEOUT_S = 30.0


def _key_file(path: Path, key: bytes | None = None) -> Path:
    path.write_text((key or os.urandom(32)).hex() + "\n")
    path.chmod(0o600)
    return path


def test_azure_sas_link_downloads_the_bytes(
    azurite_blob: AzuriteBlob, sqlite_catalog: SqliteCatalog, clock: ManualClock
) -> None:
    store = AzureBlobStore.connect(connection_string=azurite_blob.connection_string)
    buckets = BucketNames(raw="sas-raw", analytics="sas-analytics", crash="sas-crash")
    for bucket in (buckets.raw, buckets.analytics, buckets.crash):
        store.ensure_bucket(bucket)
    env = make_api_env(
        sqlite_catalog,
        store,
        clock,
        buckets=buckets,
        presigner=AzureSasPresigner(store),
    )
    rider = sqlite_catalog.upsert_rider(RIDERS["r1"])
    stored = store_log(
        store, sqlite_catalog, buckets, rider=rider, suit="SUIT-7", start=clock()
    )
    raw = stored.objects["raw_csv"]

    link = env.get(f"/api/v1/objects/{raw.object_id}/download", "r1", "rider")
    assert link.status_code == 200
    url = link.json()["url"]
    assert url.startswith(azurite_blob.blob_endpoint) and "sig=" in url
    download = httpx.get(url, timeout=HTTP_TIMEOUT_S)
    assert download.status_code == 200
    assert download.content == stored.csv_gz

    other = stored.objects["analytics"]
    tampered = url.replace(f"/{buckets.raw}/", f"/{buckets.analytics}/").replace(
        raw.key, other.key
    )
    assert httpx.get(tampered, timeout=HTTP_TIMEOUT_S).status_code == 403
    unsigned = httpx.get(url.split("?")[0], timeout=HTTP_TIMEOUT_S)
    assert unsigned.status_code != 200 and unsigned.content != stored.csv_gz
    expired = store.signed_get_url(
        buckets.raw, raw.key, expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(1)
    )
    assert httpx.get(expired, timeout=HTTP_TIMEOUT_S).status_code == 403
    assert env.get("/ready", "x", "rnd").json()["checks"]["store"] == "ok"


def test_encrypted_store_link_serves_plaintext(
    tmp_path: Path, sqlite_catalog: SqliteCatalog, clock: ManualClock
) -> None:
    inner = LocalDirStore(tmp_path / "objects")
    store = EnvelopeStore(inner, FileKeyRing(os.urandom(32)))
    buckets = BucketNames()
    for bucket in (buckets.raw, buckets.analytics, buckets.crash):
        store.ensure_bucket(bucket)
    env = make_api_env(sqlite_catalog, store, clock)
    rider = sqlite_catalog.upsert_rider(RIDERS["r1"])
    stored = store_log(
        store, sqlite_catalog, buckets, rider=rider, suit="SUIT-7", start=clock()
    )
    raw = stored.objects["raw_csv"]
    assert (inner.root / raw.bucket / raw.key).read_bytes() != stored.csv_gz

    url = env.get(f"/api/v1/objects/{raw.object_id}/download", "r1", "rider").json()[
        "url"
    ]
    download = env.client.get(url)
    assert download.status_code == 200
    assert download.content == stored.csv_gz
    assert download.headers["content-length"] == str(len(stored.csv_gz))
    analytics = env.get(f"/api/v1/logs/{stored.log}/analytics", "r1", "rider")
    assert analytics.status_code == 200 and analytics.json() == stored.analytics


def _cloud_config(tmp_path: Path, store_toml: str) -> Path:
    _key_file(tmp_path / "token-secret")
    path = tmp_path / "cloud.toml"
    path.write_text(f'[auth]\nsecret_file = "token-secret"\n\n[store]\n{store_toml}\n')
    return path


def test_cloud_wiring_builds_each_backend_and_encryption(
    tmp_path: Path, azurite_blob: AzuriteBlob
) -> None:
    old_key = os.urandom(32)
    _key_file(tmp_path / "store.key")
    _key_file(tmp_path / "store-old.key", old_key)

    config = load_config(
        _cloud_config(
            tmp_path,
            'kind = "local"\nencryption = "envelope"\nkey_file = "store.key"\n'
            'old_key_files = "store-old.key"',
        ),
        env={},
    )
    store = build_store(config)
    assert isinstance(store, EnvelopeStore) and isinstance(store.inner, LocalDirStore)
    assert isinstance(store.keyring, FileKeyRing)
    assert key_id_of(old_key) in store.keyring.key_ids
    assert isinstance(build_presigner(config, store), LocalPresigner)

    config = load_config(
        _cloud_config(
            tmp_path,
            f'kind = "azure"\nconnection_string = "{azurite_blob.connection_string}"',
        ),
        env={},
    )
    store = build_store(config)
    assert isinstance(store, AzureBlobStore)
    assert isinstance(build_presigner(config, store), AzureSasPresigner)

    config = load_config(
        _cloud_config(
            tmp_path,
            'kind = "s3"\nendpoint_url = "http://127.0.0.1:9"\nencryption = "server"',
        ),
        env={},
    )
    store = build_store(config)
    assert isinstance(store, S3Store)
    assert isinstance(build_presigner(config, store), S3Presigner)


@pytest.mark.parametrize(
    ("store_toml", "message"),
    [
        ('encryption = "envelope"', "key_file"),
        ('encryption = "server"', "cannot encrypt"),
        ('kind = "azure"', "connection_string"),
        ('encryption = "sometimes"', "allowed values"),
        ('kind = "gcs"', "allowed values"),
    ],
)
def test_cloud_store_config_contradictions_are_refused(
    tmp_path: Path, store_toml: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_cloud_config(tmp_path, store_toml), env={})


def test_gateway_wiring_encrypts_uploads(tmp_path: Path) -> None:
    _key_file(tmp_path / "store.key")
    config = config_from_mapping(
        {
            "gateway": {"id": "gw-1", "workdir": str(tmp_path)},
            "store": {"encryption": "envelope", "key_file": "store.key"},
        }
    )
    store = build_gateway_store(config)
    assert isinstance(store, EnvelopeStore)
    assert isinstance(store.inner, LocalDirStore)
    assert store.inner.root == (tmp_path / "store").resolve()

    azure = config_from_mapping(
        {
            "gateway": {"id": "gw-1", "workdir": str(tmp_path)},
            "store": {
                "kind": "azure",
                "account_name": "devaccount",
                "account_key": "a2V5",
                "endpoint_url": "http://127.0.0.1:9/devaccount",
            },
        }
    )
    assert isinstance(build_gateway_store(azure), AzureBlobStore)
    # The upload gate probes the blob endpoint, not "no uplink needed".
    assert uplink_target(azure) == ("127.0.0.1", 9)


def test_store_rewrap_command_moves_keys_after_rotation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old_key, new_key = os.urandom(32), os.urandom(32)
    root = tmp_path / "store"
    inner = LocalDirStore(root)
    inner.ensure_bucket("raw")
    before = EnvelopeStore(inner, FileKeyRing(old_key))
    body = os.urandom(5000)
    before.put_object(
        "raw",
        "r1/log.csv.gz",
        body,
        metadata={"sha256": "0" * 64},
        checksum=BodyChecksum.of(body, ChecksumMode.MD5),
    )
    _key_file(tmp_path / "new.key", new_key)
    _key_file(tmp_path / "old.key", old_key)
    rotated = _cloud_config(
        tmp_path,
        'encryption = "envelope"\nkey_file = "new.key"\nold_key_files = "old.key"',
    )
    assert cli.main(["--config", str(rotated), "store-rewrap", "--bucket", "raw"]) == 0
    assert "raw: 1 re-wrapped, 0 re-encrypted" in capsys.readouterr().out
    assert (
        EnvelopeStore(inner, FileKeyRing(new_key)).get_object("raw", "r1/log.csv.gz")
        == body
    )

    forgotten = _cloud_config(tmp_path, 'encryption = "envelope"\nkey_file = "old.key"')
    assert (
        cli.main(["--config", str(forgotten), "store-rewrap", "--bucket", "raw"]) == 3
    )
    plain = _cloud_config(tmp_path, 'kind = "local"')
    assert cli.main(["--config", str(plain), "store-rewrap"]) == 3
