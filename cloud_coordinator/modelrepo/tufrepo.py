"""The TUF repository of published models, kept in the models bucket.

Layout in the bucket (consistent snapshots, so a gateway that reads while a
publication is being written sees either the old or the new state, never a
mix)::

    metadata/root.json              newest root (also {N}.root.json for each N)
    metadata/timestamp.json         the only file that changes in place
    metadata/{N}.snapshot.json      immutable once written
    metadata/{N}.targets.json       immutable once written
    targets/{dir}/{sha256}.{name}   target files, named by their hash

A change writes the new target files first, then targets, snapshot and last
the timestamp, so the file a client reads first is the last one replaced.
Roles are signed with the keys of :class:`~.keys.KeyRing`; thresholds are
those root declares. ``snapshot.json`` and ``targets.json`` without a version
are written too, for people and for :meth:`TufRepository.load`.

Changes on one host are serialised by an exclusive ``flock`` on
``<keys_dir>/.repo.lock`` (publishing and the refresh timer may meet).
Known limit: two coordinator hosts signing at the same moment would race on
version numbers; one host holds the online keys and signs.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tuf.api.exceptions import RepositoryError, UnsignedMetadataError

# python-tuf documents these names in tuf.api.metadata but defines them in a
# private module without re-exporting them explicitly, hence the ignore.
from tuf.api.metadata import (  # type: ignore[attr-defined]
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization import DeserializationError
from tuf.api.serialization.json import JSONSerializer

from edge_agent.upload import (
    BodyChecksum,
    ChecksumMode,
    ObjectNotFound,
    ObjectStore,
)

from .errors import RepoStateError
from .keys import ROLES, KeyRing

__all__ = [
    "METADATA_PREFIX",
    "TARGETS_PREFIX",
    "ExpiryPolicy",
    "RepoStatus",
    "TufRepository",
    "target_object_key",
]

_LOGGER = logging.getLogger(__name__)

METADATA_PREFIX = "metadata/"
TARGETS_PREFIX = "targets/"
_DAY_S = 86_400
# Indented JSON: people read these files when something goes wrong.
_SERIALIZER = JSONSerializer(compact=False)


@dataclass(frozen=True)
class ExpiryPolicy:
    """How long each role's metadata stays valid after it is signed.

    The timestamp is short (a frozen mirror is noticed within two days), the
    snapshot and targets a little longer, root a year (its keys are offline).
    A refresh re-signs a role once less than ``refresh_fraction`` of its
    period remains; run it at least a few times per timestamp period.
    """

    root_s: int = 365 * _DAY_S
    targets_s: int = 30 * _DAY_S
    snapshot_s: int = 7 * _DAY_S
    timestamp_s: int = 2 * _DAY_S
    refresh_fraction: float = 0.5

    def period_s(self, role: str) -> int:
        """Return the validity period of ``role`` in seconds."""
        period: int = getattr(self, f"{role}_s")
        return period


@dataclass(frozen=True)
class RepoStatus:
    """Versions and expiry times of the four roles."""

    versions: dict[str, int]
    expires: dict[str, dt.datetime]
    targets: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "versions": self.versions,
            "expires": {r: t.isoformat() for r, t in self.expires.items()},
            "targets": self.targets,
        }


def target_object_key(target_path: str, sha256_hex: str) -> str:
    """Return where a target's bytes live (hash-prefixed, as TUF clients ask)."""
    directory, sep, name = target_path.rpartition("/")
    return f"{TARGETS_PREFIX}{directory}{sep}{sha256_hex}.{name}"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TufRepository:
    """Create, change and re-sign the TUF metadata of the models bucket."""

    def __init__(
        self,
        store: ObjectStore,
        bucket: str,
        keys: KeyRing,
        *,
        expiry: ExpiryPolicy | None = None,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        """Bind the repository to ``bucket`` of ``store``; nothing is read yet."""
        self.store = store
        self.bucket = bucket
        self.keys = keys
        self.expiry = expiry or ExpiryPolicy()
        self._clock = clock

    @property
    def label(self) -> str:
        """Return a short name for log lines."""
        return f"model repo {self.store.name}/{self.bucket}"

    # -- reading --------------------------------------------------------------

    def _get(self, key: str) -> bytes:
        return self.store.get_object(self.bucket, key)

    def is_initialised(self) -> bool:
        """Return whether the bucket holds a root."""
        try:
            found = self.store.head_object(self.bucket, f"{METADATA_PREFIX}root.json")
        except ObjectNotFound:  # the bucket itself is missing
            return False
        return found is not None

    def load(self, role: str) -> Metadata[Any]:
        """Return the newest metadata of a top-level role.

        Raises:
            RepoStateError: the repository is not initialised or the file is
                not valid TUF metadata.
        """
        key = f"{METADATA_PREFIX}{role}.json"
        try:
            data = self._get(key)
        except ObjectNotFound as exc:
            raise RepoStateError(
                f"{self.label}: {key} is missing; initialise the repository "
                "with `cloud-coordinator models init`"
            ) from exc
        try:
            return Metadata.from_bytes(data)
        except DeserializationError as exc:
            raise RepoStateError(
                f"{self.label}: {key}: not TUF metadata: {exc}"
            ) from exc

    def root_bytes(self) -> bytes:
        """Return the newest root metadata as stored (the gateways' trust anchor).

        Raises:
            RepoStateError: the repository is not initialised.
        """
        try:
            return self._get(f"{METADATA_PREFIX}root.json")
        except ObjectNotFound as exc:
            raise RepoStateError(f"{self.label}: not initialised (no root)") from exc

    def targets(self) -> dict[str, TargetFile]:
        """Return the target files the newest targets metadata lists."""
        signed = self.load(Targets.type).signed
        assert isinstance(signed, Targets)
        return dict(signed.targets)

    def target_bytes(self, target_path: str) -> bytes:
        """Return a listed target's bytes, checked against its metadata.

        Raises:
            RepoStateError: the target is not listed or its bytes differ.
        """
        info = self.targets().get(target_path)
        if info is None:
            raise RepoStateError(f"{self.label}: no target {target_path!r}")
        data = self._get(target_object_key(target_path, info.hashes["sha256"]))
        try:
            info.verify_length_and_hashes(data)
        except RepositoryError as exc:
            raise RepoStateError(f"{self.label}: target {target_path}: {exc}") from exc
        return data

    def status(self) -> RepoStatus:
        """Return the version and expiry of every role and the target lengths."""
        versions: dict[str, int] = {}
        expires: dict[str, dt.datetime] = {}
        targets: dict[str, int] = {}
        for role in ROLES:
            signed = self.load(role).signed
            versions[role] = signed.version
            expires[role] = signed.expires
            if isinstance(signed, Targets):
                targets = {path: t.length for path, t in signed.targets.items()}
        return RepoStatus(versions, expires, targets)

    # -- writing --------------------------------------------------------------

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the host-wide lock of this repository's keys while changing it."""
        self.keys.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.keys.keys_dir / ".repo.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        checksum = BodyChecksum.of(data, ChecksumMode.MD5)
        metadata = {"sha256": hashlib.sha256(data).hexdigest()}
        self.store.put_object(
            self.bucket,
            key,
            data,
            metadata=metadata,
            checksum=checksum,
            content_type=content_type,
        )

    def _sign(self, md: Metadata[Any], role: str) -> bytes:
        """Set the expiry, sign with every key of ``role``; return the bytes."""
        md.signed.expires = self._clock() + dt.timedelta(
            seconds=self.expiry.period_s(role)
        )
        md.signatures.clear()
        for signer in self.keys.signers(role):
            try:
                md.sign(signer, append=True)
            except UnsignedMetadataError as exc:
                raise RepoStateError(
                    f"{self.label}: cannot sign {role}: {exc}"
                ) from exc
        return md.to_bytes(_SERIALIZER)

    def _check_keys_match_root(self, root: Root, role: str) -> None:
        keyids = {signer.public_key.keyid for signer in self.keys.signers(role)}
        declared = set(root.roles[role].keyids)
        usable = keyids & declared
        if len(usable) < root.roles[role].threshold:
            raise RepoStateError(
                f"{self.label}: the {role} keys in {self.keys.keys_dir} "
                f"({sorted(keyids)}) are not the ones root declares "
                f"({sorted(declared)}, threshold {root.roles[role].threshold})"
            )

    def initialise(self, *, root_threshold: int = 1) -> None:
        """Create version 1 of every role with no targets.

        Raises:
            RepoStateError: the bucket already holds a root, or the threshold
                exceeds the root keys.
            RepoKeyError: a role has no usable key file.
        """
        with self._exclusive():
            self._initialise_locked(root_threshold=root_threshold)

    def _initialise_locked(self, *, root_threshold: int = 1) -> None:
        """Create the roles (under the lock)."""
        self.store.ensure_bucket(self.bucket)
        if self.is_initialised():
            raise RepoStateError(
                f"{self.label}: already initialised; a second root would cut off "
                "every gateway that trusts the first"
            )
        root = Root(consistent_snapshot=True)
        for role in ROLES:
            for signer in self.keys.signers(role):
                root.add_key(signer.public_key, role)
        root_keys = len(root.roles["root"].keyids)
        if not 1 <= root_threshold <= root_keys:
            raise RepoStateError(
                f"{self.label}: root threshold {root_threshold} needs 1..{root_keys} "
                "root keys"
            )
        root.roles["root"].threshold = root_threshold

        root_md = Metadata(root)
        targets_md = Metadata(Targets())
        snapshot_md = Metadata(Snapshot())
        timestamp_md = Metadata(Timestamp())
        root_bytes = self._sign(root_md, "root")
        targets_bytes = self._sign(targets_md, "targets")
        snapshot_md.signed.meta["targets.json"] = MetaFile(targets_md.signed.version)
        snapshot_bytes = self._sign(snapshot_md, "snapshot")
        timestamp_md.signed.snapshot_meta = MetaFile(snapshot_md.signed.version)
        timestamp_bytes = self._sign(timestamp_md, "timestamp")

        self._put(f"{METADATA_PREFIX}1.root.json", root_bytes, "application/json")
        self._write_chain(targets_bytes, 1, snapshot_bytes, 1, timestamp_bytes)
        self._put(f"{METADATA_PREFIX}root.json", root_bytes, "application/json")
        _LOGGER.info(
            "%s: initialised (root threshold %d of %d keys)",
            self.label,
            root_threshold,
            root_keys,
        )

    def _write_chain(
        self,
        targets_bytes: bytes | None,
        targets_version: int,
        snapshot_bytes: bytes | None,
        snapshot_version: int,
        timestamp_bytes: bytes,
    ) -> None:
        """Write new targets, snapshot and timestamp in the order clients need."""
        json_type = "application/json"
        if targets_bytes is not None:
            self._put(
                f"{METADATA_PREFIX}{targets_version}.targets.json",
                targets_bytes,
                json_type,
            )
            self._put(f"{METADATA_PREFIX}targets.json", targets_bytes, json_type)
        if snapshot_bytes is not None:
            self._put(
                f"{METADATA_PREFIX}{snapshot_version}.snapshot.json",
                snapshot_bytes,
                json_type,
            )
            self._put(f"{METADATA_PREFIX}snapshot.json", snapshot_bytes, json_type)
        self._put(f"{METADATA_PREFIX}timestamp.json", timestamp_bytes, json_type)

    def change_targets(
        self,
        add: Mapping[str, bytes],
        *,
        custom: Mapping[str, Mapping[str, Any]] | None = None,
        remove: tuple[str, ...] = (),
    ) -> int:
        """Add (or replace) target files and publish a new targets version.

        Args:
            add: target path -> bytes; written under their hash before any
                metadata names them.
            custom: target path -> the ``custom`` object stored beside it.
            remove: target paths to drop from the listing (their bytes stay).

        Returns:
            The new targets version.

        Raises:
            RepoStateError: the repository is missing or its keys do not
                match root.
            RepoKeyError: a key file is missing or unusable.
        """
        with self._exclusive():
            return self._change_targets_locked(add, custom=custom, remove=remove)

    def _change_targets_locked(
        self,
        add: Mapping[str, bytes],
        *,
        custom: Mapping[str, Mapping[str, Any]] | None = None,
        remove: tuple[str, ...] = (),
    ) -> int:
        """Change the targets (under the lock)."""
        root = self.load(Root.type).signed
        assert isinstance(root, Root)
        for role in ("targets", "snapshot", "timestamp"):
            self._check_keys_match_root(root, role)
        custom = custom or {}

        targets_md = self.load(Targets.type)
        targets = targets_md.signed
        assert isinstance(targets, Targets)
        for path, data in add.items():
            info = TargetFile.from_data(path, data, ["sha256"])
            if path in custom:
                info.unrecognized_fields["custom"] = dict(custom[path])
            self._put(
                target_object_key(path, info.hashes["sha256"]),
                data,
                "application/octet-stream",
            )
            targets.targets[path] = info
        for path in remove:
            targets.targets.pop(path, None)
        targets.version += 1
        targets_bytes = self._sign(targets_md, "targets")

        snapshot_md = self.load(Snapshot.type)
        snapshot = snapshot_md.signed
        assert isinstance(snapshot, Snapshot)
        snapshot.meta["targets.json"] = MetaFile(targets.version)
        snapshot.version += 1
        snapshot_bytes = self._sign(snapshot_md, "snapshot")

        timestamp_md = self.load(Timestamp.type)
        timestamp = timestamp_md.signed
        assert isinstance(timestamp, Timestamp)
        timestamp.snapshot_meta = MetaFile(snapshot.version)
        timestamp.version += 1
        timestamp_bytes = self._sign(timestamp_md, "timestamp")

        self._write_chain(
            targets_bytes,
            targets.version,
            snapshot_bytes,
            snapshot.version,
            timestamp_bytes,
        )
        _LOGGER.info(
            "%s: targets v%d (%d added, %d removed), snapshot v%d, timestamp v%d",
            self.label,
            targets.version,
            len(add),
            len(remove),
            snapshot.version,
            timestamp.version,
        )
        return targets.version

    def refresh(self, *, force: bool = False) -> list[str]:
        """Re-sign the roles that expire soon; return the roles re-signed.

        A role is re-signed when less than ``refresh_fraction`` of its period
        remains. ``force`` re-signs snapshot and timestamp regardless (their
        keys are the online ones the refresh timer has). Targets are
        re-signed only when close to expiry (it needs the targets key), then
        snapshot and timestamp follow. Root is never re-signed here (its
        keys are offline): when root comes close to expiry the log says so
        at WARNING.

        Raises:
            RepoStateError, RepoKeyError: as :meth:`change_targets`.
        """
        with self._exclusive():
            return self._refresh_locked(force=force)

    def _refresh_locked(self, *, force: bool = False) -> list[str]:
        """Re-sign what is due (under the lock)."""
        now = self._clock()

        def due(md: Metadata[Any], role: str, *, forced: bool = force) -> bool:
            left_s = (md.signed.expires - now).total_seconds()
            margin_s = self.expiry.refresh_fraction * self.expiry.period_s(role)
            return forced or left_s < margin_s

        root_md = self.load(Root.type)
        if due(root_md, "root", forced=False):
            _LOGGER.warning(
                "%s: root expires %s; sign a new root with the offline root keys",
                self.label,
                root_md.signed.expires.isoformat(),
            )
        targets_md = self.load(Targets.type)
        snapshot_md = self.load(Snapshot.type)
        timestamp_md = self.load(Timestamp.type)
        resigned: list[str] = []

        targets_bytes: bytes | None = None
        # ``force`` re-signs snapshot and timestamp only: their keys are the
        # online ones the refresh timer has.
        if due(targets_md, "targets", forced=False):
            targets_md.signed.version += 1
            targets_bytes = self._sign(targets_md, "targets")
            resigned.append("targets")
        snapshot_bytes: bytes | None = None
        if targets_bytes is not None or due(snapshot_md, "snapshot"):
            snapshot = snapshot_md.signed
            assert isinstance(snapshot, Snapshot)
            snapshot.meta["targets.json"] = MetaFile(targets_md.signed.version)
            snapshot.version += 1
            snapshot_bytes = self._sign(snapshot_md, "snapshot")
            resigned.append("snapshot")
        if snapshot_bytes is not None or due(timestamp_md, "timestamp"):
            timestamp = timestamp_md.signed
            assert isinstance(timestamp, Timestamp)
            timestamp.snapshot_meta = MetaFile(snapshot_md.signed.version)
            timestamp.version += 1
            timestamp_bytes = self._sign(timestamp_md, "timestamp")
            self._write_chain(
                targets_bytes,
                targets_md.signed.version,
                snapshot_bytes,
                snapshot_md.signed.version,
                timestamp_bytes,
            )
            resigned.append("timestamp")
        if resigned:
            _LOGGER.info(
                "%s: re-signed %s (timestamp v%d valid until %s)",
                self.label,
                ", ".join(resigned),
                timestamp_md.signed.version,
                timestamp_md.signed.expires.isoformat(),
            )
        else:
            _LOGGER.info("%s: nothing due for re-signing", self.label)
        return resigned
