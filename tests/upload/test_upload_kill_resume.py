"""A real process killed between parts, and a fresh process completing the upload."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from upload_helpers import MIB, write_random_file

from edge_agent.upload import LocalDirStore, ObjectStore, S3Store, UploadJournal
from tests.support.seaweed import SeaweedS3

CHILD = Path(__file__).with_name("resume_child.py")
# Bound on waiting for the child to reach the kill point.
REACH_KILL_POINT_TIMEOUT_S = 120.0
FILE_BYTES = 40 * MIB
PART_MIB = 5


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.fixture(params=["local", pytest.param("seaweedfs", marks=pytest.mark.s3)])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[ObjectStore, list[str]]:
    if request.param == "local":
        root = tmp_path / "objects"
        return LocalDirStore(root), ["--local", str(root)]
    server: SeaweedS3 = request.getfixturevalue("seaweed_s3")
    store = S3Store.connect(
        server.endpoint_url,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        region=server.region,
    )
    args = [
        "--endpoint",
        server.endpoint_url,
        "--access-key",
        server.access_key_id,
        "--secret",
        server.secret_access_key,
    ]
    return store, args


def test_upload_killed_between_parts_completes_in_a_fresh_process(
    backend: tuple[ObjectStore, list[str]], tmp_path: Path
) -> None:
    store, store_args = backend
    bucket = f"kill-{uuid.uuid4().hex[:10]}"
    store.ensure_bucket(bucket)
    source = tmp_path / "ride.csv.gz"
    sha = write_random_file(source, FILE_BYTES)
    journal_path = tmp_path / "journal.db"
    signal_file = tmp_path / "part-2-done"
    key = "rider-7/SUIT-0001/2026/05/01/KILL1.csv.gz"
    common = [
        sys.executable,
        str(CHILD),
        *store_args,
        "--bucket",
        bucket,
        "--key",
        key,
        "--file",
        str(source),
        "--sha256",
        sha,
        "--journal",
        str(journal_path),
        "--part-mib",
        str(PART_MIB),
    ]

    # First process: killed with SIGKILL once part 2 is sent and journalled.
    first = subprocess.Popen(
        [*common, "--stop-after-part", "2", "--signal-file", str(signal_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + REACH_KILL_POINT_TIMEOUT_S
    while not signal_file.exists() and first.poll() is None:
        assert time.monotonic() < deadline, "child never reached part 2"
        time.sleep(0.05)
    assert first.poll() is None, first.communicate(timeout=10)[1].decode()
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    assert first.returncode == -signal.SIGKILL

    with UploadJournal(journal_path) as journal:
        entry = journal.find(bucket, key)
        assert entry is not None
        assert sorted(journal.parts(entry.upload_id)) == [1, 2]
    [open_upload] = store.list_multipart_uploads(bucket)
    assert open_upload.upload_id == entry.upload_id
    assert store.head_object(bucket, key) is None

    # Second, fresh process: sends only the missing parts and completes.
    second = subprocess.run(common, capture_output=True, timeout=300, check=False)
    assert second.returncode == 0, second.stderr.decode()
    summary = json.loads(second.stdout)

    part_count = FILE_BYTES // (PART_MIB * MIB)
    assert summary["parts_sent"] == list(range(3, part_count + 1))
    assert summary["parts_reused"] == 2
    assert summary["uploads_aborted"] == 0
    assert summary["etag"].endswith(f"-{part_count}")
    downloaded = tmp_path / "downloaded"
    store.download_file(bucket, key, downloaded)
    assert _file_sha256(downloaded) == sha
    info = store.head_object(bucket, key)
    assert info is not None and info.metadata["sha256"] == sha
    assert store.list_multipart_uploads(bucket) == []
    with UploadJournal(journal_path) as journal:
        assert journal.find(bucket, key) is None
