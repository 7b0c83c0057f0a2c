"""Authentication: bearer JWTs (HS256 or ES256) and the four roles.

See :mod:`.tokens` for the claims and checks, :mod:`.keys` for key files
and :mod:`.errors` for the exception tree.
"""

from .errors import AuthError, KeyFileError, TokenRejected
from .keys import (
    MIN_HMAC_KEY_BYTES,
    generate_es256_keypair,
    generate_hmac_key,
    read_es256_private_key,
    read_es256_public_key,
    read_hmac_key,
)
from .roles import Principal, Role
from .tokens import (
    MAX_TOKEN_CHARS,
    Algorithm,
    TokenIssuer,
    TokenSettings,
    TokenVerifier,
)

__all__ = [
    "MAX_TOKEN_CHARS",
    "MIN_HMAC_KEY_BYTES",
    "Algorithm",
    "AuthError",
    "KeyFileError",
    "Principal",
    "Role",
    "TokenIssuer",
    "TokenRejected",
    "TokenSettings",
    "TokenVerifier",
    "generate_es256_keypair",
    "generate_hmac_key",
    "read_es256_private_key",
    "read_es256_public_key",
    "read_hmac_key",
]
