"""Short-lived download links: S3 presigned URLs, Azure SAS, or URLs the API signs.

A client downloads raw data directly from storage, not through the API's
worker threads. With an S3 store the link is an S3 presigned GET (SigV4,
valid ``ttl_s``), signed for the endpoint clients see, which may differ
from the one the API uses internally; with Azure Blob Storage it is a
read-only service SAS for the one blob, signed with the account key. With
the local-directory store (or client-side encryption) the API serves the
bytes itself at ``/api/v1/blobs/{bucket}/{key}``; the link carries its
expiry and an HMAC-SHA256 over bucket, key and expiry, checked in constant
time. Either link needs no bearer token: like an S3 presigned
URL, the signature is the permission, and it expires in minutes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol
from urllib.parse import quote

import boto3
from botocore.config import Config

from edge_agent.upload import StorageError, map_boto_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from edge_agent.upload.azure import AzureBlobStore

__all__ = [
    "BLOB_ROUTE_PREFIX",
    "AzureSasPresigner",
    "DownloadLink",
    "LinkRejected",
    "LocalPresigner",
    "Presigner",
    "S3Presigner",
    "derive_link_key",
]

_LOGGER = logging.getLogger(__name__)

BLOB_ROUTE_PREFIX = "/api/v1/blobs"
# Context of the link key derived from the token secret, so the two keys
# differ even though one file holds the secret.
_DERIVATION_LABEL = b"suitlink download links v1"


class LinkRejected(Exception):
    """A download link's signature is wrong or its time is up."""


@dataclass(frozen=True)
class DownloadLink:
    """A URL to GET an object from, and when it stops working."""

    url: str
    expires_at: dt.datetime


class Presigner(Protocol):
    """Make short-lived download links for stored objects."""

    def presign(
        self, bucket: str, key: str, *, ttl_s: int, now: dt.datetime, base_url: str
    ) -> DownloadLink:
        """Return a link to GET ``bucket``/``key``, valid ``ttl_s`` from ``now``.

        ``base_url`` is the API's own external URL, for links it serves.

        Raises:
            StorageError: the store cannot sign a link.
        """
        ...


def derive_link_key(secret: bytes) -> bytes:
    """Return a link-signing key derived from another secret."""
    return hmac.new(secret, _DERIVATION_LABEL, hashlib.sha256).digest()


class LocalPresigner:
    """Links to the API's own blob route, signed with an HMAC key."""

    def __init__(self, key: bytes) -> None:
        """Sign with ``key`` (at least 32 bytes).

        Raises:
            ValueError: the key is too short.
        """
        if len(key) < 32:
            raise ValueError(f"download link key: {len(key)} bytes, at least 32")
        self._key = key

    def _signature(self, bucket: str, key: str, expires: int) -> str:
        message = f"{bucket}\n{key}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def presign(
        self, bucket: str, key: str, *, ttl_s: int, now: dt.datetime, base_url: str
    ) -> DownloadLink:
        """Return a signed link to the API's blob route."""
        expires = int(now.timestamp()) + ttl_s
        signature = self._signature(bucket, key, expires)
        url = (
            f"{base_url.rstrip('/')}{BLOB_ROUTE_PREFIX}/{quote(bucket)}/"
            f"{quote(key)}?expires={expires}&signature={signature}"
        )
        return DownloadLink(url, dt.datetime.fromtimestamp(expires, dt.UTC))

    def check(
        self, bucket: str, key: str, expires: int, signature: str, now: dt.datetime
    ) -> None:
        """Accept a link's parameters, or raise.

        Raises:
            LinkRejected: a wrong signature, or the link has expired.
        """
        expected = self._signature(bucket, key, expires)
        if not hmac.compare_digest(expected, signature.lower()):
            raise LinkRejected("download link: signature does not match")
        if now.timestamp() >= expires:
            raise LinkRejected("download link: expired; ask the API for a new one")


class S3Presigner:
    """S3 presigned GET URLs (SigV4) from a boto3 client."""

    def __init__(self, client: S3Client) -> None:
        """Sign with ``client``, whose endpoint is the one clients will reach.

        The client must sign with SigV4 (``signature_version="s3v4"``):
        botocore otherwise presigns S3 URLs with the legacy SigV2, which
        newer AWS regions refuse. :meth:`connect` builds such a client.
        """
        self._client = client

    @classmethod
    def connect(
        cls,
        endpoint_url: str | None,
        *,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str = "us-east-1",
        addressing_style: Literal["auto", "virtual", "path"] = "path",
    ) -> S3Presigner:
        """Return a presigner for ``endpoint_url`` as clients reach it.

        Signing is local: no request is made. Credentials left None come
        from boto3's usual chain.
        """
        client: S3Client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(
                region_name=region,
                signature_version="s3v4",
                s3={"addressing_style": addressing_style},
            ),
        )
        return cls(client)

    def presign(
        self, bucket: str, key: str, *, ttl_s: int, now: dt.datetime, base_url: str
    ) -> DownloadLink:
        """Return an S3 presigned GET URL (SigV4)."""
        try:
            url = self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": bucket, "Key": key},
                ExpiresIn=ttl_s,
            )
        except Exception as exc:  # botocore raises several unrelated types
            raise map_boto_error(exc, f"presign {bucket}/{key}") from exc
        if not isinstance(url, str):
            raise StorageError(f"presign {bucket}/{key}: no URL returned")
        # SigV4 counts the lifetime from the signing time, which botocore
        # takes from the system clock (not the API's); report the same.
        expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl_s)
        return DownloadLink(url, expires_at.replace(microsecond=0))


class AzureSasPresigner:
    """Azure service SAS URLs (read only, one blob) from the store's account key."""

    def __init__(self, store: AzureBlobStore, endpoint_url: str | None = None) -> None:
        """Sign for ``endpoint_url`` as clients reach it (None: the store's)."""
        self._store = store
        self._endpoint_url = endpoint_url

    def presign(
        self, bucket: str, key: str, *, ttl_s: int, now: dt.datetime, base_url: str
    ) -> DownloadLink:
        """Return a SAS URL valid ``ttl_s`` from the system clock.

        Raises:
            StorageError: the store has no account key to sign with.
        """
        # Like SigV4 above, the service checks the expiry against real time.
        expires_at = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=ttl_s)).replace(
            microsecond=0
        )
        url = self._store.signed_get_url(
            bucket, key, expires_at=expires_at, endpoint_url=self._endpoint_url
        )
        return DownloadLink(url, expires_at)
