"""Where settings come from, in order: arguments (the commands' flags) > ``OAKID_*``
variables > a TOML config file > defaults.

- The config file is named by ``config`` (``--config``, ``OAKID_CONFIG``): a TOML
  document whose top-level keys are settings (``client_id = "..."``,
  ``public_paths = ["/health"]``, ``session_lifetime = "12h"``). An unknown key
  is a start-up error that names it.
- ``client_secret_file`` and ``secret_file`` name a file holding the secret (a
  container's mounted secret): read once at start-up, one trailing newline
  removed. At each level a setting and its ``_file`` form are exclusive.
- Durations are seconds, or a number with ``s``, ``m``, ``h`` or ``d``:
  ``90``, ``90s``, ``15m``, ``12h``, ``7d``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ..errors import ConfigurationError

__all__ = [
    "DURATIONS",
    "FILE_SETTINGS",
    "SOURCES",
    "parse_duration",
    "pick",
    "read_config_file",
    "read_secret_file",
]

#: the settings that are durations (seconds)
DURATIONS: Final = frozenset(
    {
        "session_lifetime",
        "idle_timeout",
        "refresh_margin",
        "claims_refresh_interval",
        "http_timeout",
        "login_timeout",
        "clock_skew",
    }
)
#: settings that may be given as a file to read instead: setting -> its ``_file`` name
FILE_SETTINGS: Final = {"client_secret": "client_secret_file", "secret": "secret_file"}
#: the names of the sources, strongest first
SOURCES: Final = ("argument", "environment", "config file", "default")

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*")


def parse_duration(name: str, raw: Any) -> float:
    """Seconds from ``90``, ``"90"``, ``"90s"``, ``"15m"``, ``"12h"``, ``"7d"``."""
    if isinstance(raw, bool):
        raise ConfigurationError(name, "must be a duration like 90, 90s, 15m, 12h or 7d")
    if isinstance(raw, (int, float)):
        return float(raw)
    match = _DURATION.fullmatch(str(raw).lower())
    if match is None:
        raise ConfigurationError(
            name, f"cannot read {raw!r} as a duration (like 90, 90s, 15m, 12h or 7d)"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def read_config_file(path: str, known: frozenset[str]) -> dict[str, Any]:
    """The settings in the TOML file at ``path``; a mistake names ``config``."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found, no-redef, unused-ignore]

    try:
        with Path(path).open("rb") as file:
            loaded = tomllib.load(file)
    except OSError as exc:
        raise ConfigurationError("config", f"cannot read {path!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError("config", f"{path!r} is not valid TOML: {exc}") from None
    data: dict[str, Any] = dict(loaded)
    for key, value in data.items():
        if key not in known:
            raise ConfigurationError(key, f"unknown setting in the config file {path!r}")
        if isinstance(value, dict):
            raise ConfigurationError(key, f"must be a value, not a table, in {path!r}")
    return data


def read_secret_file(name: str, path: Any) -> str:
    """The secret in the file ``path`` (the ``name`` setting), one trailing newline removed."""
    try:
        text = Path(str(path)).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigurationError(name, f"cannot read {str(path)!r}: {reason}") from None
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        raise ConfigurationError(name, f"{str(path)!r} is empty")
    return text


def pick(
    name: str,
    levels: tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]],
) -> tuple[Any, str] | None:
    """The value of ``name`` from the strongest level that has it (a ``_file`` form read
    there), with that level's name; ``None`` when no level has it."""
    file_name = FILE_SETTINGS.get(name)
    for level, source in zip(levels, SOURCES, strict=False):
        direct = level.get(name)
        from_file = level.get(file_name) if file_name else None
        if direct is not None and from_file is not None:
            raise ConfigurationError(name, f"give {name} or {file_name}, not both ({source})")
        if from_file is not None:
            assert file_name is not None
            return read_secret_file(file_name, from_file), source
        if direct is not None:
            return direct, source
    return None
