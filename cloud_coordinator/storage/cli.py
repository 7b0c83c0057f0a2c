"""``cloud-coordinator store-rewrap``: move data keys to the active key-encryption key.

After a rotation (a new ``[store] key_file``, the previous one listed in
``old_key_files``) every object's data key is still wrapped under the old
key. This command re-wraps them under the active key, bucket by bucket:
where the store can replace metadata in place (local folder, Azure Blob)
only the wrapped key changes; elsewhere (S3) the object is read and written
again under a new data key. Safe to run again and to interrupt: objects
already under the active key are skipped. When it reports nothing left
under the old key, the old key file can be retired.

Exit codes are the CLI's: 0 done, 3 configuration (encryption is not
``envelope``, a key file is unusable, or an object's key is in no key file),
5 the store failed.
"""

from __future__ import annotations

import argparse
from typing import Any

from edge_agent.upload.envelope import EnvelopeStore, rewrap_bucket
from edge_agent.upload.keyring import UnknownKeyError

from ..config import ConfigError, CoordinatorConfig
from ..wiring import build_store

__all__ = ["add_command", "run"]

# Exit codes shared with cloud_coordinator.cli (kept equal, not imported, to
# avoid importing the CLI module from a command it loads).
_EXIT_OK = 0


def add_command(commands: Any) -> None:
    """Add the ``store-rewrap`` subcommand to ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "store-rewrap",
        help="re-wrap object data keys under the active encryption key",
        description="For a store with client-side envelope encryption "
        "([store] encryption = 'envelope'): re-wrap every object's data key "
        "under the active key-encryption key ([store] key_file), reading the "
        "old wrapped keys with the keys in [store] old_key_files. Buckets: "
        "those of [buckets] unless --bucket is given. Objects stored before "
        "encryption was switched on are counted and left as they are. Uses "
        "[store] and [buckets]; safe to run again.",
    )
    parser.add_argument(
        "--bucket",
        action="append",
        default=None,
        help="bucket to process (repeatable; default: every configured bucket)",
    )
    parser.add_argument("--prefix", default="", help="only keys with this prefix")
    parser.set_defaults(run=run)


def run(config: CoordinatorConfig, args: argparse.Namespace) -> int:
    """Re-wrap the buckets; print one summary line per bucket.

    Raises:
        ConfigError: encryption is not envelope, or an object's key is unknown.
        StorageError: the store failed.
    """
    store = build_store(config)
    if not isinstance(store, EnvelopeStore):
        raise ConfigError(
            "store-rewrap: [store] encryption is not 'envelope'; there are no "
            "wrapped data keys to move"
        )
    buckets = config.buckets
    names = args.bucket or [
        buckets.raw,
        buckets.analytics,
        buckets.crash,
        buckets.archive,
    ]
    for bucket in names:
        try:
            summary = rewrap_bucket(store, bucket, args.prefix)
        except UnknownKeyError as exc:
            raise ConfigError(f"store-rewrap: bucket {bucket}: {exc}") from exc
        print(
            f"{bucket}: {summary.rewrapped} re-wrapped, {summary.reencrypted} "
            f"re-encrypted, {summary.current} already current, "
            f"{summary.plaintext} not encrypted"
        )
    return _EXIT_OK
