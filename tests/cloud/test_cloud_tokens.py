"""Token minting and verification, and key files (HS256 and ES256)."""

from __future__ import annotations

import datetime as dt
import logging
import stat
from pathlib import Path

import jwt
import pytest

from cloud_coordinator.auth import (
    MIN_HMAC_KEY_BYTES,
    Algorithm,
    KeyFileError,
    Role,
    TokenIssuer,
    TokenRejected,
    TokenSettings,
    TokenVerifier,
    generate_es256_keypair,
    generate_hmac_key,
    read_hmac_key,
)


def test_hs256_round_trip_from_generated_key(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "secret"
    generate_hmac_key(key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    settings = TokenSettings()
    issuer = TokenIssuer.from_files(settings, secret_file=key_file)
    verifier = TokenVerifier.from_files(settings, secret_file=key_file)
    token = issuer.mint("r1", Role.RIDER, 600)
    principal = verifier.verify(token)
    assert principal.subject == "r1" and principal.role is Role.RIDER
    assert principal.token_id and len(principal.token_id) == 32
    remaining = principal.expires_at - dt.datetime.now(dt.UTC)
    assert dt.timedelta(seconds=590) < remaining <= dt.timedelta(seconds=600)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert {"iss", "aud", "sub", "role", "iat", "nbf", "exp", "jti"} <= set(claims)
    with pytest.raises(KeyFileError, match="already exists"):
        generate_hmac_key(key_file)


def test_es256_round_trip_and_key_separation(tmp_path: Path) -> None:
    private, public = tmp_path / "es.key", tmp_path / "es.pub"
    generate_es256_keypair(private, public)
    settings = TokenSettings(algorithm=Algorithm.ES256)
    issuer = TokenIssuer.from_files(settings, private_key_file=private)
    verifier = TokenVerifier.from_files(settings, public_key_file=public)
    token = issuer.mint("t1", "technician", 60)
    assert verifier.verify(token).role is Role.TECHNICIAN
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    # An HS256 token made with the public key's bytes (algorithm confusion).
    forged = jwt.encode(
        jwt.decode(token, options={"verify_signature": False}),
        b"x" * 64,
        algorithm="HS256",
    )
    with pytest.raises(TokenRejected):
        verifier.verify(forged)
    other_private, other_public = tmp_path / "o.key", tmp_path / "o.pub"
    generate_es256_keypair(other_private, other_public)
    other = TokenIssuer.from_files(settings, private_key_file=other_private)
    with pytest.raises(TokenRejected, match="Signature"):
        verifier.verify(other.mint("t1", "technician", 60))
    with pytest.raises(KeyFileError, match=r"P-256|private key"):
        TokenIssuer.from_files(settings, private_key_file=public)


def test_expiry_with_leeway() -> None:
    secret = b"s" * 40
    settings = TokenSettings(leeway_s=30)
    now = dt.datetime.now(dt.UTC)
    verifier = TokenVerifier(settings, secret)

    def minted(ago_s: float, ttl_s: int) -> str:
        issuer = TokenIssuer(
            settings, secret, clock=lambda: now - dt.timedelta(seconds=ago_s)
        )
        return issuer.mint("r1", "rider", ttl_s)

    verifier.verify(minted(ago_s=70, ttl_s=60))  # 10 s past expiry: in leeway
    with pytest.raises(TokenRejected, match="expired"):
        verifier.verify(minted(ago_s=200, ttl_s=60))


def test_mint_refuses_bad_input() -> None:
    issuer = TokenIssuer(TokenSettings(max_ttl_s=3600), b"s" * 40)
    with pytest.raises(ValueError, match="lifetime"):
        issuer.mint("r1", "rider", 3601)
    with pytest.raises(ValueError, match="lifetime"):
        issuer.mint("r1", "rider", 0)
    with pytest.raises(ValueError):
        issuer.mint("r1", "root", 60)
    with pytest.raises(ValueError, match="sub"):
        issuer.mint("../r1", "rider", 60)


def test_key_files_are_checked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(KeyFileError, match="keygen"):
        read_hmac_key(tmp_path / "missing")
    short = tmp_path / "short"
    short.write_bytes(b"x" * (MIN_HMAC_KEY_BYTES - 1) + b"\n")
    with pytest.raises(KeyFileError, match="at least 32"):
        read_hmac_key(short)
    loose = tmp_path / "loose"
    loose.write_bytes(b"k" * 40)
    loose.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert read_hmac_key(loose) == b"k" * 40
    assert "chmod 600" in caplog.text
    with pytest.raises(KeyFileError, match=r"HS256 .* no secret"):
        TokenVerifier.from_files(TokenSettings())
    with pytest.raises(KeyFileError, match=r"ES256 .* no public key"):
        TokenVerifier.from_files(TokenSettings(algorithm=Algorithm.ES256))
    with pytest.raises(KeyFileError, match="need a"):
        TokenVerifier(TokenSettings(algorithm=Algorithm.ES256), b"k" * 40)
