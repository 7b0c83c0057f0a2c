"""Upload one file in a child process, optionally stopping after a part.

Used by the kill-and-resume test: with ``--stop-after-part N`` the child
writes ``--signal-file`` once part N is sent and journalled, then waits to be
killed. Without it the child uploads to the end and prints a JSON summary
(parts it sent, parts reused, uploads aborted) on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from edge_agent.upload import (
    LocalDirStore,
    ObjectMetadata,
    ObjectRef,
    ObjectStore,
    S3Store,
    Uploader,
    UploadJournal,
    UploadSettings,
)

MIB = 1024 * 1024
# How long a stopped child waits to be killed before giving up on its own.
WAIT_FOR_KILL_S = 120.0


def _store(args: argparse.Namespace) -> ObjectStore:
    if args.local:
        return LocalDirStore(Path(args.local))
    return S3Store.connect(
        args.endpoint,
        access_key_id=args.access_key,
        secret_access_key=args.secret,
        region="us-east-1",
    )


def main() -> int:
    """Run one upload as the arguments say; return the exit code."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--local")
    parser.add_argument("--endpoint")
    parser.add_argument("--access-key")
    parser.add_argument("--secret")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--sha256", required=True)
    parser.add_argument("--journal", required=True)
    parser.add_argument("--part-mib", type=int, default=5)
    parser.add_argument("--stop-after-part", type=int)
    parser.add_argument("--signal-file")
    args = parser.parse_args()

    sent: list[int] = []

    def on_part_done(ref: ObjectRef, number: int, count: int) -> None:
        sent.append(number)
        if number == args.stop_after_part:
            Path(args.signal_file).write_text(json.dumps(sent))
            deadline = time.monotonic() + WAIT_FOR_KILL_S
            while time.monotonic() < deadline:
                time.sleep(0.05)
            sys.exit(3)

    settings = UploadSettings(
        multipart_threshold_bytes=args.part_mib * MIB,
        part_size_bytes=args.part_mib * MIB,
    )
    metadata = ObjectMetadata(
        sha256_hex=args.sha256,
        log_id="KILL1",
        suit_id="SUIT-0001",
        rider_id="rider-7",
        kind="raw_csv",
    )
    with UploadJournal(Path(args.journal)) as journal:
        uploader = Uploader(_store(args), journal, settings, on_part_done=on_part_done)
        result = uploader.upload_file(
            ObjectRef(args.bucket, args.key), Path(args.file), metadata
        )
    summary = {
        "parts_sent": sent,
        "parts_reused": result.parts_reused,
        "uploads_aborted": result.uploads_aborted,
        "etag": result.etag,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
