"""The gateway's TUF client: verified roll-out plan and model files.

Each check builds a fresh python-tuf ``Updater`` (one refresh per instance)
over a persistent cache::

    <dir>/tuf/metadata/   root_history/, root.json, timestamp.json, ...
    <dir>/tuf/targets/    downloaded targets, verified against targets.json

The first trusted root is the provisioned ``trusted_root`` file; once the
cache holds a root (possibly rotated since, each rotation verified by the
previous root) the cache is the trust anchor. The client enforces what TUF
does: threshold signatures of each role, expiry, version numbers that never
go down (a replayed older timestamp, snapshot or targets is refused), and
snapshot consistency (no mix of files from different publications). When
the repository is unreachable, :class:`~.fetcher.CachedFallbackFetcher`
lets the same checks run on the cached metadata, which therefore works
offline until it expires.

Errors: python-tuf's ``RepositoryError`` family and length mismatches
become :class:`~.errors.UpdateVerificationError`; an unreachable repository
with no usable cache :class:`~.errors.UpdateUnavailable`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tuf.api.exceptions import (
    DownloadError,
    DownloadLengthMismatchError,
    RepositoryError,
)
from tuf.api.metadata import Metadata
from tuf.api.serialization import DeserializationError
from tuf.ngclient.fetcher import FetcherInterface
from tuf.ngclient.updater import Updater

from edge_agent.upload import ObjectStore

from .errors import ModelUpdateError, UpdateUnavailable, UpdateVerificationError
from .fetcher import CachedFallbackFetcher, StoreFetcher
from .rollout import RolloutDocError, RolloutPlan, rollout_target_path

__all__ = ["RefreshResult", "TufModelClient"]

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshResult:
    """What one metadata refresh established."""

    offline: bool
    offline_reason: str | None
    targets_version: int
    timestamp_expires_utc: str


@contextmanager
def _mapped(what: str) -> Iterator[None]:
    """Map python-tuf errors of one step into this package's tree."""
    try:
        yield
    except (RepositoryError, DownloadLengthMismatchError, DeserializationError) as exc:
        raise UpdateVerificationError(
            f"{what}: refused by TUF verification: {type(exc).__name__}: {exc}"
        ) from exc
    except DownloadError as exc:
        raise UpdateUnavailable(
            f"{what}: repository unreachable and no cached copy that verifies: "
            f"{exc.__cause__ or exc}"
        ) from exc
    except OSError as exc:
        raise ModelUpdateError(f"{what}: local cache: {exc}") from exc


class TufModelClient:
    """Verified access to one model repository; see the module docstring."""

    def __init__(
        self,
        cache_dir: Path,
        repository_url: str,
        *,
        trusted_root: Path | None,
        store: ObjectStore | None = None,
        http: FetcherInterface | None = None,
        label: str = "gateway",
    ) -> None:
        """Set the cache folder, repository base URL and the trust anchor.

        Args:
            cache_dir: folder for cached metadata and targets (created).
            repository_url: ``store://<bucket>`` or ``https://host/path``;
                ``metadata/`` and ``targets/`` lie below it.
            trusted_root: the provisioned root.json (used until the cache
                holds a root).
            store: the object store for ``store://`` URLs.
            http: the HTTP fetcher (default: python-tuf's urllib3 fetcher).
            label: who is speaking, for log lines (the gateway id).
        """
        base = repository_url.rstrip("/")
        self.metadata_dir = Path(cache_dir) / "metadata"
        self.targets_dir = Path(cache_dir) / "targets"
        self.metadata_url = f"{base}/metadata/"
        self.targets_url = f"{base}/targets/"
        self.trusted_root = trusted_root
        self.label = label
        self._store_fetcher = StoreFetcher(store, http)
        self._updater: Updater | None = None
        self._fetcher: CachedFallbackFetcher | None = None

    def _bootstrap(self) -> bytes | None:
        if (self.metadata_dir / "root.json").exists():
            return None
        if self.trusted_root is None:
            raise UpdateUnavailable(
                f"{self.label}: no trusted TUF root: set [models] trusted_root to "
                "the repository's root.json"
            )
        try:
            return self.trusted_root.read_bytes()
        except OSError as exc:
            raise UpdateUnavailable(
                f"{self.label}: trusted root {self.trusted_root}: {exc}"
            ) from exc

    def refresh(self) -> RefreshResult:
        """Load and verify the newest metadata (or the cache when offline).

        Raises:
            UpdateVerificationError: metadata refused (signature, expiry,
                version going back, inconsistent snapshot).
            UpdateUnavailable: unreachable and no cache, or no trusted root.
        """
        self.metadata_dir.mkdir(parents=True, exist_ok=True)
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        bootstrap = self._bootstrap()
        fetcher = CachedFallbackFetcher(self._store_fetcher, self.metadata_dir)
        try:
            with _mapped(f"{self.label}: TUF metadata from {self.metadata_url}"):
                updater = Updater(
                    str(self.metadata_dir),
                    self.metadata_url,
                    str(self.targets_dir),
                    self.targets_url,
                    fetcher,
                    bootstrap=bootstrap,
                )
                updater.refresh()
        except UpdateUnavailable:
            if fetcher.offline_reason is not None:
                self._raise_if_cache_expired(fetcher.offline_reason)
            raise
        self._updater, self._fetcher = updater, fetcher
        # The cache holds only verified files: read versions for the status.
        with _mapped(f"{self.label}: cached TUF metadata"):
            timestamp = Metadata.from_file(str(self.metadata_dir / "timestamp.json"))
            targets = Metadata.from_file(str(self.metadata_dir / "targets.json"))
        result = RefreshResult(
            offline=fetcher.offline_reason is not None,
            offline_reason=fetcher.offline_reason,
            targets_version=targets.signed.version,
            timestamp_expires_utc=timestamp.signed.expires.isoformat(),
        )
        _LOGGER.debug(
            "%s: TUF metadata verified (targets v%d, timestamp valid until %s%s)",
            self.label,
            result.targets_version,
            result.timestamp_expires_utc,
            ", offline" if result.offline else "",
        )
        return result

    def _raise_if_cache_expired(self, offline_reason: str) -> None:
        """Name expiry as the reason when offline and the cache has run out."""
        for role in ("timestamp", "snapshot", "targets"):
            try:
                cached = Metadata.from_file(str(self.metadata_dir / f"{role}.json"))
            except (OSError, DeserializationError):
                continue
            if cached.signed.is_expired():
                expired_at = cached.signed.expires.isoformat()
                raise UpdateVerificationError(
                    f"{self.label}: refused by TUF verification: ExpiredMetadataError: "
                    f"cached {role}.json expired at {expired_at} and the repository "
                    f"is unreachable ({offline_reason})"
                )

    def _require_updater(self) -> Updater:
        if self._updater is None:
            raise RuntimeError(f"{self.label}: refresh() must come first")
        return self._updater

    def fetch(self, target_path: str) -> Path:
        """Return a local path of a verified target (downloaded if needed).

        Raises:
            UpdateVerificationError: the target is not listed, or its bytes
                do not match the signed length and hashes.
            UpdateUnavailable: not cached and the repository is unreachable.
        """
        updater = self._require_updater()
        what = f"{self.label}: target {target_path}"
        with _mapped(what):
            info = updater.get_targetinfo(target_path)
            if info is None:
                raise UpdateVerificationError(
                    f"{what}: not listed in the signed targets metadata"
                )
            cached = updater.find_cached_target(info)
            if cached is not None:
                return Path(cached)
            return Path(updater.download_target(info))

    def plan(self, model_name: str) -> RolloutPlan | None:
        """Return the verified roll-out plan of ``model_name`` (None: none yet).

        Raises:
            UpdateVerificationError: the plan file is refused or malformed.
            UpdateUnavailable: see :meth:`fetch`.
        """
        updater = self._require_updater()
        path = rollout_target_path(model_name)
        with _mapped(f"{self.label}: target {path}"):
            if updater.get_targetinfo(path) is None:
                return None
        local = self.fetch(path)
        try:
            return RolloutPlan.from_bytes(local.read_bytes(), path)
        except (OSError, RolloutDocError) as exc:
            raise UpdateVerificationError(f"{self.label}: {exc}") from exc
