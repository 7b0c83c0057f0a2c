"""Numbered exit codes of ``edge-agent``, shared by the CLI and the service.

systemd's ``RestartPreventExitStatus=`` can name the codes that a restart
cannot fix (configuration errors), and operators can script on the rest.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["EXIT_CODE_HELP", "ExitCode"]


class ExitCode(IntEnum):
    """Why ``edge-agent`` stopped."""

    OK = 0
    INTERNAL_ERROR = 1
    USAGE = 2
    CONFIG_ERROR = 3
    BAD_INPUT = 4
    STORE_UNAVAILABLE = 5
    SUIT_UNAVAILABLE = 6
    MODEL_ERROR = 7
    BROKER_UNAVAILABLE = 8
    ADAPTER_BUSY = 9
    INTERRUPTED = 130


EXIT_CODE_HELP = {
    ExitCode.OK: "all work done",
    ExitCode.INTERNAL_ERROR: "unexpected error (a bug): see the log",
    ExitCode.USAGE: "wrong command-line usage",
    ExitCode.CONFIG_ERROR: "invalid configuration: fix the named key",
    ExitCode.BAD_INPUT: "some input was rejected and quarantined; the rest went on",
    ExitCode.STORE_UNAVAILABLE: "object store unreachable; data stays buffered",
    ExitCode.SUIT_UNAVAILABLE: "no suit found or the BLE link failed",
    ExitCode.MODEL_ERROR: "the crash model could not be loaded or verified",
    ExitCode.BROKER_UNAVAILABLE: "MQTT broker unreachable or refused the gateway",
    ExitCode.ADAPTER_BUSY: "another agent owns the Bluetooth adapter",
    ExitCode.INTERRUPTED: "stopped by a signal; every log is resumable",
}


def epilog() -> str:
    """Return the exit-code table for ``--help``."""
    lines = ["exit codes:"]
    lines += [f"  {int(code):>3}  {text}" for code, text in EXIT_CODE_HELP.items()]
    return "\n".join(lines)
