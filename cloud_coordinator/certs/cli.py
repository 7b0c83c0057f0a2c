"""``cloud-coordinator certs``: the fleet CA's command line.

Commands (``--ca-dir`` defaults to ``./mqtt-ca``)::

    certs init-ca [--ca-dir DIR] [--name CN]
    certs broker  [--ca-dir DIR] [--out DIR] NAME [NAME ...]
    certs issue   [--ca-dir DIR] --kind {gateway,device,service} --id ID
                  [--csr FILE] [--out DIR] [--days N]
    certs list    [--ca-dir DIR]

Exit codes follow ``cloud-coordinator``: 0 ok, 2 usage (a refused name or
CSR, the message says why), 3 the CA folder is unusable.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from ..config import CoordinatorConfig
from .authority import (
    CLIENT_KINDS,
    LEAF_VALIDITY_DAYS,
    SERVICE_NAMES,
    CertificateAuthority,
    CertificateError,
    ClientKind,
)

__all__ = ["add_command"]

_LOGGER = logging.getLogger(__name__)

DEFAULT_CA_DIR = Path("mqtt-ca")
_EXIT_OK = 0
_EXIT_USAGE = 2
_EXIT_CA = 3

_DESCRIPTION = f"""\
Run the fleet CA that signs the MQTT broker's and every client's
certificate. The broker (deploy/mosquitto/mosquitto.conf.example) takes a
client certificate's common name as its ACL user, so `issue --kind gateway
--id gw-1` lets that certificate publish under gateways/gw-1/ only, and
`--kind device --id d-7` only to devices/d-7/data. Service accounts are
{", ".join(SERVICE_NAMES)}. Every certificate is recorded in
CA_DIR/issued.jsonl; a name already issued to another kind is refused.
Keep CA_DIR/ca.key offline. This command reads no configuration file."""


def add_command(commands: Any) -> None:
    """Add ``certs`` and its sub-commands to the ``cloud-coordinator`` parser."""
    parser = commands.add_parser(
        "certs",
        help="issue broker, gateway and device certificates",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="certs_command", required=True)

    init = actions.add_parser("init-ca", help="create the fleet CA")
    init.add_argument("--name", default="suitlink fleet CA", help="CA common name")

    broker = actions.add_parser("broker", help="issue the broker's certificate")
    broker.add_argument(
        "names", nargs="+", help="DNS names or IPs clients connect to (first = CN)"
    )
    broker.add_argument("--out", type=Path, help="folder (default CA_DIR/broker)")

    issue = actions.add_parser("issue", help="issue a client certificate")
    issue.add_argument("--kind", required=True, choices=CLIENT_KINDS)
    issue.add_argument("--id", required=True, dest="client_id", help="the name")
    issue.add_argument(
        "--csr", type=Path, help="sign this CSR (key made on the client) instead"
    )
    issue.add_argument("--out", type=Path, help="folder (default CA_DIR/clients)")
    issue.add_argument(
        "--days", type=int, default=LEAF_VALIDITY_DAYS, help="validity in days"
    )

    listing = actions.add_parser("list", help="print the issued certificates")

    for sub in (init, broker, issue, listing):
        sub.add_argument(
            "--ca-dir",
            type=Path,
            default=DEFAULT_CA_DIR,
            help=f"CA folder (default ./{DEFAULT_CA_DIR})",
        )
    parser.set_defaults(run=run)


def run(config: CoordinatorConfig, args: argparse.Namespace) -> int:
    """Run one ``certs`` sub-command; return the exit code."""
    ca_dir: Path = args.ca_dir
    try:
        if args.certs_command == "init-ca":
            ca = CertificateAuthority.create(ca_dir, common_name=args.name)
            print(f"created CA {ca.cert_file} (keep {ca_dir / 'ca.key'} offline)")
            return _EXIT_OK
        ca = CertificateAuthority.load(ca_dir)
    except CertificateError as exc:
        print(f"cloud-coordinator certs: {exc}", file=sys.stderr)
        return _EXIT_CA
    try:
        if args.certs_command == "broker":
            files = ca.issue_broker(args.names, args.out)
        elif args.certs_command == "issue":
            csr = args.csr.read_bytes() if args.csr else None
            files = ca.issue_client(
                ClientKind(args.kind),
                args.client_id,
                args.out,
                csr_pem=csr,
                validity_days=args.days,
            )
        else:
            for entry in ca.ledger():
                print(
                    f"{entry.kind:8} {entry.name:32} serial {entry.serial} "
                    f"until {entry.not_after}"
                )
            return _EXIT_OK
    except (CertificateError, OSError) as exc:
        print(f"cloud-coordinator certs: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    print(f"certificate {files.cert_file}")
    if files.key_file is not None:
        print(f"key         {files.key_file} (mode 0600)")
    print(f"trust       {ca.cert_file}")
    return _EXIT_OK
