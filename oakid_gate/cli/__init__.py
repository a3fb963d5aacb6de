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
Only the command given is imported and given its flags (start-up is a target of its
own: ``oakid-gate run`` reads neither the proxy's nor the provider's modules).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Collection, Sequence
from types import ModuleType

from .. import __version__
from ..errors import ConfigurationError
from ..logs import configure

__all__ = ["COMMANDS", "command_module", "main"]

#: each command: its module (add_arguments(), main(); its docstring is its description)
#: and its summary for ``oakid-gate --help``, the docstring's first sentence (a test
#: keeps the two equal)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "serve a Python web app (ASGI or WSGI, detected) behind the gate"),
    "proxy": ("proxy", "a reverse proxy to any HTTP service, behind the gate"),
    "dev-idp": ("devidp", "a local OakID-compatible provider for development"),
    "demo": ("demo", "the dev-idp and a protected example app"),
    "check": ("check", "load the settings, fetch discovery and keys, report"),
}


def command_module(name: str) -> ModuleType:
    """The module of command ``name``, imported now."""
    return importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")


def _parser(given: Collection[str] = ()) -> argparse.ArgumentParser:
    """The parser, with the flags of the commands named in ``given`` (the arguments:
    the others are listed with their summary only)."""
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
    for name, (_, summary) in COMMANDS.items():
        if name in given:
            command = command_module(name)
            command.add_arguments(sub.add_parser(name, help=summary, description=command.__doc__))
        else:
            sub.add_parser(name, help=summary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = _parser(set(arguments)).parse_args(arguments)
    try:
        configure(args.log_level, args.log_format.strip().lower())
    except ConfigurationError as exc:
        print(f"oakid-gate: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        status: int = command_module(args.command).main(args)
        return status
    except ConfigurationError as exc:
        print(f"oakid-gate: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
