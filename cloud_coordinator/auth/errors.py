"""Exceptions of authentication: tokens and keys.

Hierarchy::

    AuthError
     ├── TokenRejected     missing, malformed, expired, unsigned or tampered
     │                     token; wrong issuer or audience (HTTP 401)
     └── KeyFileError      a key file is missing, unreadable, too short or
                           of the wrong type (an operator must fix it)

PyJWT and cryptography errors are mapped into this tree in
:mod:`.tokens` and :mod:`.keys`, always with ``raise ... from``.
"""

from __future__ import annotations

__all__ = ["AuthError", "KeyFileError", "TokenRejected"]


class AuthError(Exception):
    """Base class of every authentication error."""


class TokenRejected(AuthError):
    """A bearer token cannot be accepted; the message says why."""


class KeyFileError(AuthError):
    """A key file cannot be used; the message names the file and the fix."""
