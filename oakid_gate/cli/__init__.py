"""The ``oakid-gate`` command.

::

    oakid-gate run module:app         serve a Python web app behind the gate
    oakid-gate proxy --upstream URL   a reverse proxy to any HTTP service, behind the gate
    oakid-gate dev-idp                a local OakID-compatible provider
    oakid-gate demo                   the dev-idp plus a protected example app
    oakid-gate check                  load the settings, fetch discovery and keys, report

Every setting is a flag (``--client-id``) and an environment variable
(``OAKID_CLIENT_ID``); flags win. Prefer the environment for secrets: flags
show in the process list. One module per command; nothing imports this package.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from .. import __version__
from ..errors import ConfigurationError
from ..logs import configure
from . import check, demo, devidp, proxy, run

__all__ = ["main"]

#: one module per command, with add_arguments() and main(); its docstring is its help
_COMMANDS: dict[str, ModuleType] = {
    "run": run,
    "proxy": proxy,
    "dev-idp": devidp,
    "demo": demo,
    "check": check,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oakid-gate", description="OpenID Connect login in front of any web app."
    )
    parser.add_argument("--log-level", default=os.environ.get("OAKID_LOG_LEVEL", "info"))
    parser.add_argument(
        "--log-format",
        default=os.environ.get("OAKID_LOG_FORMAT", "text"),
        help="text or json: one event per line (default text, or OAKID_LOG_FORMAT)",
    )
    parser.add_argument("--version", action="version", version=f"oakid-gate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in _COMMANDS.items():
        doc = command.__doc__ or ""
        summary = doc.partition(".")[0]
        help_ = summary[0].lower() + summary[1:]
        command.add_arguments(sub.add_parser(name, help=help_, description=doc))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        configure(args.log_level, args.log_format.strip().lower())
    except ConfigurationError as exc:
        print(f"oakid-gate: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        status: int = _COMMANDS[args.command].main(args)
        return status
    except ConfigurationError as exc:
        print(f"oakid-gate: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
