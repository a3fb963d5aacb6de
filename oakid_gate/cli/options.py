"""Settings on the command line: a flag for every setting, and reading them back."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..errors import ConfigurationError
from ..settings import Settings, setting_fields
from ..settings.sources import FILE_SETTINGS

__all__ = [
    "add_serving",
    "add_settings",
    "env_default",
    "int_option",
    "settings_from",
    "start_metrics",
]


def add_settings(parser: argparse.ArgumentParser) -> None:
    """A ``--<name>`` flag for every setting (``OAKID_<NAME>`` variables still apply)."""
    group = parser.add_argument_group(
        "settings (also OAKID_<NAME> environment variables, or a --config file; "
        "flags > variables > file > defaults)"
    )
    group.add_argument("--config", metavar="FILE", help="a TOML file of settings (OAKID_CONFIG)")
    for name in FILE_SETTINGS.values():
        group.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            metavar="FILE",
            help=f"read {name.removesuffix('_file')} from this file (OAKID_{name.upper()})",
        )
    for f in setting_fields():
        flag = "--" + f.name.replace("_", "-")
        doc = f.metadata.get("doc", "")
        type_ = str(f.type)
        if type_.startswith("bool"):
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, help=doc)
        elif type_.startswith("tuple"):
            group.add_argument(
                flag, dest=f.name, action="append", metavar="VALUE", help=doc + " (repeatable)"
            )
        else:
            group.add_argument(flag, dest=f.name, metavar="VALUE", help=doc)


def add_serving(parser: argparse.ArgumentParser) -> None:
    """The options of a command that runs a server."""
    parser.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=_bool_env("OAKID_ACCESS_LOG"),
        help="log every request, with codes, state and tokens never shown "
        "(default: off, or OAKID_ACCESS_LOG)",
    )


def _bool_env(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigurationError(
        name.removeprefix("OAKID_").lower(), f"cannot read {raw!r} as true or false"
    )


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    """The settings: flags over ``OAKID_*`` variables, checked."""
    names = {f.name for f in setting_fields()} | {"config", *FILE_SETTINGS.values()}
    kwargs = {k: v for k, v in vars(args).items() if k in names and v is not None}
    kwargs.update(overrides)
    return Settings.load(**kwargs)


def start_metrics(settings: Settings) -> None:
    """With ``metrics_address``: every process of this command writes its samples to one
    directory (set before prometheus-client is loaded, and inherited by the workers),
    and this process serves them all on that address."""
    if not settings.metrics_address:
        return
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="oakid-gate-metrics-")
    from ..metrics import serve_metrics
    from ..stores import store_for

    # A shared store counts every worker's sessions from here; a memory store is the
    # worker's own, which this process cannot see.
    shared = not settings.session_store.startswith("memory:")
    serve_metrics(settings.metrics_address, store_for(settings) if shared else None)


def env_default(name: str, default: Any) -> Any:
    """A command option's default: ``OAKID_<NAME>`` when set, else ``default`` (argparse
    converts a string default with the option's type)."""
    raw = os.environ.get(f"OAKID_{name.upper()}", "")
    return raw if raw != "" else default


def int_option(name: str, value: str | None, *, env_default: int) -> int:
    """A whole-number option, from the flag, else ``OAKID_<NAME>``, else the default."""
    raw = value if value is not None else os.environ.get(f"OAKID_{name.upper()}", str(env_default))
    try:
        number = int(raw)
    except ValueError:
        raise ConfigurationError(name, f"cannot read {raw!r} as a whole number") from None
    if name.endswith("port") and not 0 < number < 65536:
        raise ConfigurationError(name, "must be between 1 and 65535")
    return number
