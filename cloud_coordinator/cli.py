"""``cloud-coordinator``: the cloud services' command line.

Commands::

    cloud-coordinator [--config FILE] api [--host H] [--port N] [--workers N]
    cloud-coordinator [--config FILE] migrate
    cloud-coordinator [--config FILE] token --sub ID --role ROLE [--ttl-s N]
    cloud-coordinator [--config FILE] keygen [--out FILE]

The configuration file (TOML, see :mod:`cloud_coordinator.config`) comes
from ``--config`` or ``CLOUD_COORDINATOR_CONFIG``; without either the
defaults apply, with paths relative to the current folder.

Exit codes (for systemd and operators):

== ===============================================================
0  success
1  unexpected error (a bug: the traceback is logged)
2  usage error (bad command line)
3  configuration error: fix the file, a key file or an override
4  catalog unavailable or its schema cannot be migrated
5  object store unavailable or refusing the service's credentials
== ===============================================================
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from edge_agent.upload import StorageError

from .auth import (
    Algorithm,
    KeyFileError,
    Role,
    generate_es256_keypair,
    generate_hmac_key,
)
from .catalog import CatalogError
from .config import ConfigError, CoordinatorConfig, load_config
from .wiring import CONFIG_ENV, build_catalog, build_issuer, build_services

__all__ = [
    "EXIT_CATALOG",
    "EXIT_CONFIG",
    "EXIT_OK",
    "EXIT_STORE",
    "EXIT_UNEXPECTED",
    "EXIT_USAGE",
    "main",
]

_LOGGER = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_CATALOG = 4
EXIT_STORE = 5
# Commands that live beside the service they run. Each module exposes
# ``add_command(commands)``, which adds its subparser and sets
# ``run=function(config, args) -> exit code`` as the parser's default.
COMMAND_MODULES: tuple[str, ...] = (
    "cloud_coordinator.certs.cli",
    "cloud_coordinator.devices.cli",
    "cloud_coordinator.modelrepo.cli",
    "cloud_coordinator.ingest.command",
    "cloud_coordinator.retention.cli",
    "cloud_coordinator.privacy.cli",
    "cloud_coordinator.archive.cli",
    "cloud_coordinator.storage.cli",
    "cloud_coordinator.fl.cli",
)

CommandRunner = Callable[[CoordinatorConfig, argparse.Namespace], int]

# Default token lifetime: one working day.
DEFAULT_TOKEN_TTL_S = 8 * 3600
# A worker process imports FastAPI, boto3 and psycopg before it answers the
# supervisor; on a loaded two-core host that exceeds uvicorn's 5 s default,
# and the supervisor would kill and respawn workers that are just starting.
WORKER_HEALTHCHECK_TIMEOUT_S = 30
# Requests still running at shutdown get this long to finish; downloads go
# to storage directly, so API requests are short.
GRACEFUL_SHUTDOWN_S = 10


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cloud-coordinator",
        description="SuitLink cloud services: results API, catalog, tokens.",
        epilog="Exit codes: 0 ok, 1 unexpected, 2 usage, 3 configuration, "
        "4 catalog, 5 object store.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"TOML configuration file (default: ${CONFIG_ENV}, else defaults)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs")
    commands = parser.add_subparsers(dest="command", required=True)

    api = commands.add_parser(
        "api",
        help="serve the results API",
        description="Serve the results API with uvicorn. Settings come from "
        "[api], [catalog], [store], [buckets], [auth], [retention] and "
        "[downloads]; TLS is terminated here when [api] tls_cert_file and "
        "tls_key_file are set. Analytics jobs run in [jobs] workers threads "
        "(scratch files in [jobs] scratch_dir); crash verdicts go to gateways "
        "over [broker] unless [crashes] publish_verdicts is false. Pending "
        "catalog migrations run first.",
    )
    api.add_argument("--host", help="listen address (default: [api] host)")
    api.add_argument("--port", type=int, help="listen port (default: [api] port)")
    api.add_argument(
        "--workers", type=int, default=1, help="worker processes (default 1)"
    )
    api.add_argument(
        "--no-migrate", action="store_true", help="do not apply catalog migrations"
    )
    api.add_argument("--access-log", action="store_true", help="log every request")

    commands.add_parser(
        "migrate",
        help="apply pending catalog schema migrations",
        description="Apply pending migrations of the catalog in [catalog] url, "
        "in one transaction; safe to run again and from several hosts.",
    )

    token = commands.add_parser(
        "token",
        help="mint a bearer token",
        description="Print a signed token for --sub in --role. Uses [auth]: "
        "secret_file (HS256) or private_key_file (ES256), issuer, audience, "
        "max_ttl_s.",
    )
    token.add_argument("--sub", required=True, help="rider, technician or user id")
    token.add_argument("--role", required=True, choices=[role.value for role in Role])
    token.add_argument(
        "--ttl-s",
        type=int,
        default=DEFAULT_TOKEN_TTL_S,
        help=f"lifetime in seconds (default {DEFAULT_TOKEN_TTL_S})",
    )

    keygen = commands.add_parser(
        "keygen",
        help="create the token keys named in the configuration",
        description="Create [auth] secret_file (HS256) or private_key_file and "
        "public_key_file (ES256); with --out, a new HMAC secret file there "
        "(for [downloads] signing_key_file). Never overwrites a file.",
    )
    keygen.add_argument("--out", type=Path, help="write one HMAC secret here")

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_command(commands)
    return parser


def _run_api(config: CoordinatorConfig, args: argparse.Namespace) -> int:
    import uvicorn

    from .api import create_app

    host = args.host or config.api.host
    port = config.api.port if args.port is None else args.port
    tls = {}
    if config.api.tls_cert_file:
        tls = {
            "ssl_certfile": str(config.path(config.api.tls_cert_file)),
            "ssl_keyfile": str(config.path(config.api.tls_key_file)),
        }
    services = build_services(config)
    try:
        if not args.no_migrate:
            services.catalog.migrate()
        services.catalog.ping()
        scheme = "https" if tls else "http"
        _LOGGER.info(
            "api: serving on %s://%s:%d (catalog %s, store %s, %d workers)",
            scheme,
            host,
            port,
            services.catalog.name,
            services.store.name,
            args.workers,
        )
        level = "debug" if args.verbose else "info"
        if args.workers > 1:
            if args.config:
                os.environ[CONFIG_ENV] = str(args.config.resolve())
            uvicorn.run(
                "cloud_coordinator.wiring:app_from_environment",
                factory=True,
                host=host,
                port=port,
                workers=args.workers,
                timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT_S,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                log_level=level,
                access_log=args.access_log,
                **tls,  # type: ignore[arg-type]
            )
        else:
            uvicorn.run(
                create_app(services),
                host=host,
                port=port,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                log_level=level,
                access_log=args.access_log,
                **tls,  # type: ignore[arg-type]
            )
    finally:
        services.catalog.close()
    return EXIT_OK


def _run_migrate(config: CoordinatorConfig) -> int:
    catalog = build_catalog(config)
    try:
        applied = catalog.migrate()
        version = catalog.schema_version()
    finally:
        catalog.close()
    print(f"{catalog.name}: schema version {version}; applied {applied or 'none'}")
    return EXIT_OK


def _run_token(config: CoordinatorConfig, args: argparse.Namespace) -> int:
    issuer = build_issuer(config)
    try:
        token = issuer.mint(args.sub, args.role, args.ttl_s)
    except ValueError as exc:
        print(f"cloud-coordinator token: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(token)
    return EXIT_OK


def _run_keygen(config: CoordinatorConfig, args: argparse.Namespace) -> int:
    if args.out is not None:
        generate_hmac_key(args.out)
        print(f"wrote HMAC secret {args.out}")
        return EXIT_OK
    auth = config.auth
    if auth.algorithm == Algorithm.HS256:
        secret = config.path(auth.secret_file)
        if secret is None:
            raise ConfigError("[auth] secret_file is empty")
        generate_hmac_key(secret)
        print(f"wrote HS256 secret {secret}")
        return EXIT_OK
    private = config.path(auth.private_key_file)
    public = config.path(auth.public_key_file)
    if private is None or public is None:
        raise ConfigError("[auth] ES256 needs private_key_file and public_key_file")
    generate_es256_keypair(private, public)
    print(f"wrote ES256 private key {private} and public key {public}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (see the module docstring)."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    config_path = args.config or (
        Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None
    )
    try:
        config = load_config(config_path)
        runner: CommandRunner | None = getattr(args, "run", None)
        if runner is not None:
            return runner(config, args)
        if args.command == "api":
            return _run_api(config, args)
        if args.command == "migrate":
            return _run_migrate(config)
        if args.command == "token":
            return _run_token(config, args)
        return _run_keygen(config, args)
    except (ConfigError, KeyFileError) as exc:
        _LOGGER.error("configuration: %s", exc)
        return EXIT_CONFIG
    except CatalogError as exc:
        _LOGGER.error("catalog: %s", exc)
        return EXIT_CATALOG
    except StorageError as exc:
        _LOGGER.error("object store: %s", exc)
        return EXIT_STORE
    except Exception:
        _LOGGER.exception("unexpected error; please report it with this log")
        return EXIT_UNEXPECTED


if __name__ == "__main__":
    sys.exit(main())
