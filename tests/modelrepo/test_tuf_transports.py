"""The repository in SeaweedFS (S3 API), and gateways reading it over HTTP."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from modelrepo_env import MODEL, RepoWorld, model_files

from cloud_coordinator.modelrepo import (
    KeyRing,
    ModelPublisher,
    TufRepository,
    ValidationSet,
    generate_role_keys,
)
from edge_agent.modelmgr import ModelManager, TufModelClient, UpdateResult
from edge_agent.upload import S3Store
from models.registry import shipped_model
from tests.support.seaweed import SeaweedS3

SHIPPED = shipped_model().version


def _next(version: str) -> str:
    major, minor, _ = (int(p) for p in version.split("."))
    return f"{major}.{minor + 1}.0"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on a loopback ephemeral port; yield its URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10.0)


@pytest.mark.s3
def test_tuf_repository_in_seaweedfs(
    tmp_path: Path, validation: ValidationSet, seaweed_s3: SeaweedS3
) -> None:
    store = S3Store.connect(
        seaweed_s3.endpoint_url,
        access_key_id=seaweed_s3.access_key_id,
        secret_access_key=seaweed_s3.secret_access_key,
        region=seaweed_s3.region,
    )
    bucket = seaweed_s3.new_bucket("models")
    generate_role_keys(tmp_path / "keys")
    repo = TufRepository(store, bucket, KeyRing(tmp_path / "keys"))
    repo.initialise()
    (tmp_path / "root.json").write_bytes(repo.root_bytes())
    publisher = ModelPublisher(repo, lambda: validation, model_name=MODEL)
    version = _next(SHIPPED)
    outcome = publisher.publish_model(*model_files(tmp_path / "made", version))
    assert outcome.published

    client = TufModelClient(
        tmp_path / "gw" / "tuf",
        f"store://{bucket}",
        trusted_root=tmp_path / "root.json",
        store=store,
    )
    gateway = ModelManager("gw-s3", tmp_path / "gw" / "models", client)

    assert gateway.check().result is UpdateResult.INSTALLED
    assert gateway.active_version == version


def test_tuf_gateway_reads_the_repository_over_http(world: RepoWorld) -> None:
    version = _next(SHIPPED)
    world.publish_version(version)
    folder = world.root / "gw-http"

    with serve_folder(world.store.root / "models") as url:
        client = TufModelClient(
            folder / "tuf", url, trusted_root=world.trusted_root, store=None
        )
        gateway = ModelManager("gw-http", folder / "models", client)
        outcome = gateway.check()

    assert outcome.result is UpdateResult.INSTALLED
    assert gateway.active_version == version
    # The HTTP server is gone: the cached metadata still verifies.
    assert gateway.check().offline
