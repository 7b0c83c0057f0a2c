"""How the TUF client reads the repository: object store, HTTP, or the cache.

``store://<bucket>/<key>`` URLs are read through the gateway's object store
(``edge_agent.upload``), anything else over HTTP(S) with python-tuf's own
fetcher. :class:`CachedFallbackFetcher` lets the client work offline: when
the repository cannot be reached it serves ``timestamp.json`` from the
local metadata cache and answers "not found" for newer roots, so python-tuf
goes on with the cached snapshot and targets and checks them exactly as
online (signatures, versions, expiry). Only reachability failures fall back;
an answer from the repository (a 404, bad bytes) never does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from tuf.api.exceptions import DownloadError, DownloadHTTPError
from tuf.ngclient.fetcher import FetcherInterface
from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

from edge_agent.upload import ObjectNotFound, ObjectStore, StorageError

__all__ = ["STORE_SCHEME", "CachedFallbackFetcher", "StoreFetcher", "split_store_url"]

_LOGGER = logging.getLogger(__name__)

STORE_SCHEME = "store://"
_NOT_FOUND = 404


def split_store_url(url: str) -> tuple[str, str]:
    """Return (bucket, key) of a ``store://bucket/key`` URL.

    Raises:
        ValueError: not such a URL.
    """
    if not url.startswith(STORE_SCHEME):
        raise ValueError(f"{url!r}: expected {STORE_SCHEME}<bucket>/<key>")
    bucket, _, key = url[len(STORE_SCHEME) :].partition("/")
    if not bucket or not key:
        raise ValueError(f"{url!r}: expected {STORE_SCHEME}<bucket>/<key>")
    return bucket, key


class StoreFetcher(FetcherInterface):
    """Fetch ``store://`` URLs from an object store, other URLs over HTTP."""

    def __init__(self, store: ObjectStore | None, http: FetcherInterface | None = None):
        """Use ``store`` for ``store://`` URLs and ``http`` for the rest."""
        self.store = store
        self._http = http

    def _fetch(self, url: str) -> Iterator[bytes]:
        if not url.startswith(STORE_SCHEME):
            if self._http is None:
                self._http = Urllib3Fetcher()
            return self._http.fetch(url)
        if self.store is None:
            raise DownloadError(f"{url}: no object store configured")
        bucket, key = split_store_url(url)
        try:
            data = self.store.get_object(bucket, key)
        except ObjectNotFound as exc:
            raise DownloadHTTPError(f"{url}: not found", _NOT_FOUND) from exc
        except StorageError as exc:
            raise DownloadError(f"{url}: {exc}") from exc
        return iter((data,))


class CachedFallbackFetcher(FetcherInterface):
    """Serve cached metadata when the repository cannot be reached."""

    def __init__(self, inner: FetcherInterface, metadata_dir: Path) -> None:
        """Wrap ``inner``; the cache is python-tuf's ``metadata_dir``."""
        self.inner = inner
        self.metadata_dir = Path(metadata_dir)
        self.offline_reason: str | None = None

    def _fetch(self, url: str) -> Iterator[bytes]:
        try:
            return iter((b"".join(self.inner.fetch(url)),))
        except DownloadHTTPError:
            raise
        except DownloadError as exc:
            reason = str(exc.__cause__ or exc)
            if self.offline_reason is None:
                _LOGGER.warning(
                    "model repository unreachable (%s); verifying cached metadata",
                    reason,
                )
            self.offline_reason = reason
            name = url.rsplit("/", 1)[-1]
            if name == "timestamp.json":
                cached = self.metadata_dir / name
                try:
                    return iter((cached.read_bytes(),))
                except OSError:
                    raise exc from None
            if name.endswith(".root.json"):
                # Offline no newer root can be known: the cached one stays.
                raise DownloadHTTPError(f"{url}: offline", _NOT_FOUND) from exc
            raise
