"""``edge-agent pair``: map a suit to a rider in the gateway configuration.

The configuration is edited as text, so the operator's comments and layout
stay: a key already in its table gets its value replaced (the comment after
it stays), a missing key is added after the table's last key, a missing
table is appended. The result is parsed again and must equal the old
document with exactly the requested changes, and must pass the agent's own
validation; only then does it replace the file, atomically (a temporary
file in the same folder, fsynced, renamed over the old one, the folder
fsynced), keeping the file's mode and owner. An edit the text editor cannot
make safely (a table written inline, a multi-line value) is refused with a
message naming the table.

``edge-agent enrol`` uses the same editor (:func:`update_config_file`).

A running agent reads suit pairings on SIGHUP (``systemctl reload
edge-agent``), or at its next start.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import stat
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge_agent.config import ConfigError, GatewayConfig, config_from_mapping

from .exit_codes import ExitCode

__all__ = [
    "TomlScalar",
    "add_parser",
    "set_table_values",
    "update_config_file",
    "write_atomically",
]

TomlScalar = str | int | float | bool

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_HEADER = re.compile(r"^\s*\[\[?\s*(?P<inner>[^\[\]#][^#]*?)\s*\]\]?\s*(#.*)?$")
# A new configuration file is readable by the agent's group, not by others:
# it may hold credentials.
NEW_FILE_MODE = 0o640


def format_key(key: str) -> str:
    """Return ``key`` as a TOML key (bare when possible, else quoted)."""
    return key if _BARE_KEY.fullmatch(key) else _basic_string(key)


def _basic_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(
        f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in escaped
    )
    return f'"{escaped}"'


def format_value(value: TomlScalar) -> str:
    """Return ``value`` as a TOML literal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return _basic_string(value)


def _header_path(line: str) -> tuple[str, ...] | None:
    """Return the table path of a header line, None if it is not one."""
    match = _HEADER.match(line)
    if match is None:
        return None
    try:
        document = tomllib.loads(f"[{match.group('inner')}]\n")
    except tomllib.TOMLDecodeError:
        return None
    path: list[str] = []
    node: Any = document
    while isinstance(node, dict) and len(node) == 1:
        key = next(iter(node))
        path.append(key)
        node = node[key]
    return tuple(path)


def _split_comment(rest: str) -> tuple[str, str]:
    """Split the text after ``=`` into value and the rest (spaces and comment)."""
    quote: str | None = None
    index = 0
    while index < len(rest):
        char = rest[index]
        if quote == '"' and char == "\\":
            index += 2
            continue
        if quote is None and char in "\"'":
            quote = char
        elif char == quote:
            quote = None
        elif quote is None and char == "#":
            value = rest[:index].rstrip()
            return value, rest[len(value) :]
        index += 1
    return rest.rstrip(), ""


def _key_line(line: str, key: str) -> re.Match[str] | None:
    pattern = rf"^(?P<lead>\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*=\s*)"
    return re.match(pattern + r"(?P<rest>.*)$", line)


def _edit_text(
    text: str, table: tuple[str, ...], values: Mapping[str, TomlScalar]
) -> str:
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if _header_path(ln) == table), None)
    if start is None:
        header = "[" + ".".join(format_key(part) for part in table) + "]"
        body = [f"{format_key(k)} = {format_value(v)}" for k, v in values.items()]
        spacer = [""] if lines and lines[-1].strip() else []
        return "\n".join([*lines, *spacer, header, *body]) + "\n"
    end = next(
        (i for i in range(start + 1, len(lines)) if _HEADER.match(lines[i])),
        len(lines),
    )
    last_key = start
    missing = dict(values)
    for index in range(start + 1, end):
        stripped = lines[index].strip()
        if stripped and not stripped.startswith("#"):
            last_key = index
        for key in list(missing):
            match = _key_line(lines[index], key)
            if match is None:
                continue
            _value, comment = _split_comment(match.group("rest"))
            new_value = format_value(missing.pop(key))
            lines[index] = f"{match.group('lead')}{new_value}{comment}"
    added = [f"{format_key(k)} = {format_value(v)}" for k, v in missing.items()]
    lines[last_key + 1 : last_key + 1] = added
    return "\n".join(lines) + "\n"


def _with_values(
    document: dict[str, Any], table: tuple[str, ...], values: Mapping[str, TomlScalar]
) -> dict[str, Any]:
    """Return a copy of ``document`` with ``values`` set in ``table``."""
    copy: dict[str, Any] = dict(document)
    node = copy
    for part in table:
        child = node.get(part, {})
        node[part] = dict(child) if isinstance(child, dict) else child
        node = node[part]
    node.update(values)
    return copy


def set_table_values(
    text: str,
    table: tuple[str, ...],
    values: Mapping[str, TomlScalar],
    source: str = "<config>",
) -> str:
    """Return ``text`` with ``values`` set in ``[table]``, comments kept.

    Raises:
        ConfigError: ``text`` is not TOML, or the edit could not be made
            without changing anything else (names the table and what to do).
    """
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    edited = _edit_text(text, table, values)
    name = ".".join(format_key(part) for part in table)
    try:
        after = tomllib.loads(edited)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{source}: cannot update [{name}] in place ({exc}); it may be written "
            "as an inline table or with a multi-line value: edit it by hand"
        ) from exc
    if after != _with_values(before, table, values):
        raise ConfigError(
            f"{source}: updating [{name}] in place would change other keys; "
            "edit it by hand"
        )
    return edited


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, keeping its mode and owner."""
    target = path.resolve() if path.exists() else path.absolute()
    old = target.stat() if target.exists() else None
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, NEW_FILE_MODE if old is None else stat.S_IMODE(old.st_mode))
        if old is not None:
            # Only root may give the file away; others keep their own.
            with contextlib.suppress(PermissionError):
                os.chown(temporary, old.st_uid, old.st_gid)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def update_config_file(
    path: Path,
    edits: Mapping[tuple[str, ...], Mapping[str, TomlScalar]],
    *,
    template: str = "",
) -> GatewayConfig:
    """Apply ``edits`` (table -> values) to the file and return the new config.

    A missing file starts from ``template``. Nothing is written unless the
    result is valid TOML that passes the agent's configuration checks.

    Raises:
        ConfigError: the file or the result is invalid (names file and key).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = template
    for table, values in edits.items():
        text = set_table_values(text, table, values, source=str(path))
    config = config_from_mapping(tomllib.loads(text), source=str(path))
    write_atomically(path, text)
    return config


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register the subcommand."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "pair",
        help="map a suit to a rider in the gateway configuration",
        description="Write [suits.SERIAL] into the configuration file (comments "
        "kept, atomic replace). Reload the service to apply.",
    )
    parser.add_argument("--config", type=Path, required=True, help="TOML file")
    parser.add_argument("--suit", required=True, metavar="SERIAL", help="suit serial")
    parser.add_argument("--rider", required=True, metavar="ID", help="rider id")
    parser.add_argument(
        "--user-type", required=True, choices=("private", "professional")
    )
    parser.add_argument("--product", required=True, choices=("lightweight", "extended"))
    parser.set_defaults(run=run)
    return parser


def _check_identifier(what: str, value: str) -> str:
    if not value.strip() or any(ord(c) < 0x20 for c in value) or value != value.strip():
        raise ConfigError(
            f"{what} {value!r}: expected a non-empty id without control characters "
            "or surrounding spaces"
        )
    return value


def run(args: argparse.Namespace) -> ExitCode:
    """Pair the suit and print what the configuration now says."""
    serial = _check_identifier("--suit", args.suit)
    rider = _check_identifier("--rider", args.rider)
    if not args.config.exists():
        raise ConfigError(
            f"{args.config}: configuration file not found; create it with "
            "edge-agent enrol first"
        )
    values = {"rider_id": rider, "user_type": args.user_type, "product": args.product}
    config = update_config_file(args.config, {("suits", serial): values})
    identity = config.identity(serial)
    assert identity is not None
    print(
        f"suit {serial} paired to rider {identity.rider_id} "
        f"({identity.user_type}, {identity.product}) in {args.config}; "
        f"{len(config.suits)} suit(s) paired on gateway {config.gateway_id}"
    )
    print("apply with: systemctl reload edge-agent (or restart the agent)")
    return ExitCode.OK
