"""The store factory: settings to backend and encryption; the gateway's checks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_agent.cli.cmd_enrol import check_object_store
from edge_agent.config import GatewayConfig, config_from_mapping
from edge_agent.custody.errors import KeyFileError
from edge_agent.upload import (
    EnvelopeStore,
    LocalDirStore,
    S3Store,
    StoreSettings,
    build_object_store,
    etags_are_body_md5,
)
from edge_agent.upload.azure import UPLOADS_CONTAINER
from edge_agent.upload.factory import (
    DEFAULT_UPLOADS_CONTAINER,
    StoreSettingsError,
    azure_blob_endpoint,
    parse_key_file_list,
)


def _key_file(path: Path) -> Path:
    path.write_text(os.urandom(32).hex())
    path.chmod(0o600)
    return path


def test_settings_build_the_named_backend_and_encryption(tmp_path: Path) -> None:
    local = build_object_store(StoreSettings(root=tmp_path / "s"))
    assert isinstance(local, LocalDirStore) and etags_are_body_md5(local)

    sealed = build_object_store(
        StoreSettings(
            root=tmp_path / "s",
            encryption="envelope",
            key_file=_key_file(tmp_path / "k"),
        )
    )
    assert isinstance(sealed, EnvelopeStore) and not etags_are_body_md5(sealed)

    s3 = build_object_store(
        StoreSettings(kind="s3", endpoint_url="http://127.0.0.1:9", encryption="server")
    )
    assert isinstance(s3, S3Store) and etags_are_body_md5(s3)
    assert DEFAULT_UPLOADS_CONTAINER == UPLOADS_CONTAINER


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (StoreSettings(kind="gcs"), "allowed values"),
        (StoreSettings(encryption="maybe", root=Path("x")), "allowed values"),
        (StoreSettings(root=Path("x"), encryption="server"), "cannot encrypt"),
        (StoreSettings(root=Path("x"), encryption="envelope"), "key_file"),
        (StoreSettings(kind="azure"), "connection_string"),
        (StoreSettings(kind="local"), "root"),
    ],
)
def test_contradictory_settings_are_refused(
    settings: StoreSettings, message: str
) -> None:
    with pytest.raises(StoreSettingsError, match=message):
        build_object_store(settings)


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    key = _key_file(tmp_path / "k")
    key.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        build_object_store(
            StoreSettings(root=tmp_path / "s", encryption="envelope", key_file=key)
        )


def test_key_file_lists_and_azure_endpoints() -> None:
    assert parse_key_file_list(" a.key, /k/b.key ,,", Path("/etc/x")) == (
        Path("/etc/x/a.key"),
        Path("/k/b.key"),
    )
    assert azure_blob_endpoint("", "acct", "") == ("acct.blob.core.windows.net", 443)
    assert azure_blob_endpoint(
        "AccountName=a;AccountKey=k;BlobEndpoint=http://127.0.0.1:10000/a", "", ""
    ) == ("127.0.0.1", 10000)
    with pytest.raises(StoreSettingsError):
        azure_blob_endpoint("", "", "")


def test_enrol_check_encrypts_the_probe_and_names_a_missing_key(
    tmp_path: Path,
) -> None:
    def gateway(store: dict[str, str]) -> GatewayConfig:
        return config_from_mapping(
            {"gateway": {"id": "gw-1", "workdir": str(tmp_path)}, "store": store}
        )

    _key_file(tmp_path / "store.key")
    good = check_object_store(
        gateway({"encryption": "envelope", "key_file": "store.key"})
    )
    assert good.passed, good.detail
    missing = check_object_store(
        gateway({"encryption": "envelope", "key_file": "absent.key"})
    )
    assert not missing.passed and "absent.key" in missing.detail
