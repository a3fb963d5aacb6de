"""Values of settings: secrets that never show themselves, and reading raw values."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigurationError
from .sources import DURATIONS, parse_duration

__all__ = ["Secret", "check_url", "claim_pairs", "convert", "import_callable", "is_loopback_host"]


class Secret:
    """A string that never shows itself in a repr, a log line or a traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def convert(name: str, type_: Any, raw: Any) -> Any:
    t = str(type_)
    if t.startswith("Callable"):
        return import_callable(name, raw)
    if name in DURATIONS:
        seconds = parse_duration(name, raw)
        if not t.startswith("int"):
            return seconds
        if seconds != int(seconds):
            raise ConfigurationError(name, "must be a whole number of seconds")
        return int(seconds)
    try:
        if t.startswith("tuple[Secret"):
            items = _split(raw)
            return tuple(Secret(i) if isinstance(i, str) else i for i in items)
        if t == "Secret":
            if isinstance(raw, Secret):
                return raw
            if not isinstance(raw, str):
                raise TypeError("must be a string")
            return Secret(raw)
        if t.startswith("tuple[str"):
            texts = tuple(str(i) for i in _split(raw))
            if name == "public_paths":
                from .paths import join_entries  # its entries may hold commas

                return join_entries(texts)
            return texts
        if t.startswith("bool"):
            return _bool(raw)
        if t.startswith("int"):
            if isinstance(raw, bool):
                raise TypeError("must be a whole number")
            return int(raw)
        if t.startswith("float"):
            if isinstance(raw, bool):
                raise TypeError("must be a number")
            return float(raw)
        if t.startswith("Literal"):
            return str(raw).lower()
        if not isinstance(raw, str):
            raise TypeError("must be a string")
        return raw
    except (TypeError, ValueError) as exc:
        problem = str(exc) if isinstance(exc, TypeError) else f"cannot read {raw!r}"
        if t.startswith(("tuple[Secret", "Secret")):
            problem = "must be a string"
        raise ConfigurationError(name, problem) from None


def _split(raw: Any) -> list[Any]:
    if isinstance(raw, str):
        return [p.strip() for p in raw.split(",") if p.strip()]
    if isinstance(raw, Secret):
        return [raw]
    if isinstance(raw, (list, tuple, set, frozenset)):
        out: list[Any] = []
        for item in raw:
            out.extend(_split(item) if isinstance(item, str) else [item])
        return out
    raise TypeError("must be a list or a comma-separated string")


def _bool(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    if text in ("auto", ""):
        return None
    raise ValueError(text)


def check_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(name, f"{value!r} is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname) and name != "upstream":
        raise ConfigurationError(name, "must use https (plain http is allowed on loopback only)")
    if parts.username or parts.password:
        raise ConfigurationError(name, "must not hold a user name or password")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine (http is acceptable there)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def claim_pairs(entries: Any, setting: str = "required_claims") -> tuple[tuple[str, str], ...]:
    """``claim=value`` entries as ``(claim, value)`` pairs; anything else names the setting."""
    pairs = []
    for entry in entries:
        name, sep, value = str(entry).partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ConfigurationError(setting, f"{entry!r} is not claim=value, like department=eng")
        pairs.append((name, value))
    return tuple(pairs)


def import_callable(name: str, raw: Any) -> Any:
    """A callable given as itself (the middleware) or as ``module:function`` (the commands)."""
    if callable(raw):
        return raw
    if not isinstance(raw, str) or raw.count(":") != 1:
        raise ConfigurationError(name, f"{raw!r} is not a callable or module:function")
    module_name, _, attr = raw.partition(":")
    import importlib

    try:
        target: Any = importlib.import_module(module_name.strip())
        for part in attr.strip().split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(name, f"cannot import {raw!r}: {exc}") from None
    if not callable(target):
        raise ConfigurationError(name, f"{raw!r} is not callable")
    return target
