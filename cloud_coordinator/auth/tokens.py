"""Bearer tokens: signed JWTs with a subject, a role and an expiry.

Claims: ``iss`` and ``aud`` (fixed per deployment), ``sub`` (rider or
technician id, or an operator's name), ``role``, ``iat``, ``nbf``, ``exp``
and ``jti`` (a random id, for audit logs). The verifier accepts exactly
the configured algorithm: an ``alg: none`` token, or an HS256 token
presented to an ES256 deployment, fails like a bad signature. Every claim
above but ``nbf`` and ``jti`` is required. PyJWT errors are mapped into
:class:`~.errors.TokenRejected` here.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from cloud_coordinator.catalog.models import check_identifier

from .errors import KeyFileError, TokenRejected
from .keys import read_es256_private_key, read_es256_public_key, read_hmac_key
from .roles import Principal, Role

__all__ = [
    "MAX_TOKEN_CHARS",
    "Algorithm",
    "TokenIssuer",
    "TokenSettings",
    "TokenVerifier",
]

_LOGGER = logging.getLogger(__name__)

# A token of this service is about 350 characters; anything far longer is
# not ours and is refused before parsing.
MAX_TOKEN_CHARS = 4096
# Clock skew tolerated between the minting host and the API.
DEFAULT_LEEWAY_S = 30.0
# Longest lifetime `cloud-coordinator token` will mint: a leaked token
# should not outlive a rotation period.
DEFAULT_MAX_TTL_S = 30 * 24 * 3600
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]


class Algorithm(StrEnum):
    """Signature algorithm of the deployment's tokens."""

    HS256 = "HS256"
    ES256 = "ES256"


@dataclass(frozen=True)
class TokenSettings:
    """What every token of a deployment has in common."""

    algorithm: Algorithm = Algorithm.HS256
    issuer: str = "suitlink-cloud"
    audience: str = "suitlink-api"
    leeway_s: float = DEFAULT_LEEWAY_S
    max_ttl_s: int = DEFAULT_MAX_TTL_S


VerificationKey = bytes | ec.EllipticCurvePublicKey
SigningKey = bytes | ec.EllipticCurvePrivateKey


def _check_key(settings: TokenSettings, key: object, *, signing: bool) -> None:
    wanted: type = bytes
    if settings.algorithm is Algorithm.ES256:
        wanted = ec.EllipticCurvePrivateKey if signing else ec.EllipticCurvePublicKey
    if not isinstance(key, wanted):
        raise KeyFileError(
            f"{settings.algorithm} tokens need a {wanted.__name__} key, "
            f"got {type(key).__name__}"
        )


class TokenVerifier:
    """Check bearer tokens and return who presented them."""

    def __init__(self, settings: TokenSettings, key: VerificationKey) -> None:
        """Verify ``settings.algorithm`` tokens with ``key``.

        Raises:
            KeyFileError: the key does not fit the algorithm.
        """
        _check_key(settings, key, signing=False)
        self._settings = settings
        self._key = key

    @classmethod
    def from_files(
        cls,
        settings: TokenSettings,
        *,
        secret_file: Path | None = None,
        public_key_file: Path | None = None,
    ) -> TokenVerifier:
        """Read the verification key the algorithm needs from its file.

        Raises:
            KeyFileError: the needed file is not given or not usable.
        """
        if settings.algorithm is Algorithm.HS256:
            if secret_file is None:
                raise KeyFileError("HS256 tokens: no secret key file configured")
            return cls(settings, read_hmac_key(secret_file))
        if public_key_file is None:
            raise KeyFileError("ES256 tokens: no public key file configured")
        return cls(settings, read_es256_public_key(public_key_file))

    @property
    def settings(self) -> TokenSettings:
        """Return the deployment's token settings."""
        return self._settings

    def verify(self, token: str) -> Principal:
        """Return the principal of a valid token.

        Raises:
            TokenRejected: the token is malformed, expired, not yet valid,
                unsigned, signed with another key or algorithm, for another
                issuer or audience, or lacks a valid subject or role.
        """
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise TokenRejected(f"token: expected 1-{MAX_TOKEN_CHARS} characters")
        settings = self._settings
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[settings.algorithm.value],
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway_s,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenRejected("token expired; ask for a new one") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenRejected(f"token invalid: {exc}") from exc
        try:
            role = Role(str(claims.get("role")))
            subject = check_identifier("sub", claims["sub"])
            expires_at = dt.datetime.fromtimestamp(float(claims["exp"]), dt.UTC)
        except (ValueError, TypeError) as exc:
            raise TokenRejected(f"token invalid: {exc}") from exc
        token_id = claims.get("jti")
        return Principal(
            subject=subject,
            role=role,
            token_id=token_id if isinstance(token_id, str) else None,
            expires_at=expires_at,
        )


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TokenIssuer:
    """Mint tokens for operators (``cloud-coordinator token``) and tests."""

    def __init__(
        self,
        settings: TokenSettings,
        key: SigningKey,
        *,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        """Sign ``settings.algorithm`` tokens with ``key``.

        Raises:
            KeyFileError: the key does not fit the algorithm.
        """
        _check_key(settings, key, signing=True)
        self._settings = settings
        self._key = key
        self._clock = clock

    @classmethod
    def from_files(
        cls,
        settings: TokenSettings,
        *,
        secret_file: Path | None = None,
        private_key_file: Path | None = None,
    ) -> TokenIssuer:
        """Read the signing key the algorithm needs from its file.

        Raises:
            KeyFileError: the needed file is not given or not usable.
        """
        if settings.algorithm is Algorithm.HS256:
            if secret_file is None:
                raise KeyFileError("HS256 tokens: no secret key file configured")
            return cls(settings, read_hmac_key(secret_file))
        if private_key_file is None:
            raise KeyFileError("ES256 tokens: no private key file configured")
        return cls(settings, read_es256_private_key(private_key_file))

    def mint(self, subject: str, role: Role | str, ttl_s: int) -> str:
        """Return a signed token for ``subject`` in ``role``, valid ``ttl_s``.

        Raises:
            ValueError: a malformed subject, an unknown role, or a lifetime
                outside 1..``max_ttl_s`` seconds.
        """
        check_identifier("sub", subject)
        role = Role(role)
        if not 1 <= ttl_s <= self._settings.max_ttl_s:
            raise ValueError(
                f"token lifetime {ttl_s} s: expected 1-{self._settings.max_ttl_s} s"
            )
        now = self._clock().astimezone(dt.UTC)
        issued = int(now.timestamp())
        claims = {
            "iss": self._settings.issuer,
            "aud": self._settings.audience,
            "sub": subject,
            "role": role.value,
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl_s,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._key, algorithm=self._settings.algorithm.value)
        _LOGGER.info(
            "token %s: minted for %s role %s, valid %d s",
            claims["jti"],
            subject,
            role.value,
            ttl_s,
        )
        return token
