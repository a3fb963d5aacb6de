"""The ``public_paths`` entries: their syntax, read once and checked at start-up.

An entry is ``[METHODS ]PATH``:

- ``/health``: exactly that path; ``/static/*``: everything below ``/static/``;
- ``^/hooks/[a-z]+$``: a regular expression, matched on the whole path (it must
  be written anchored, ``^`` to ``$``), at most :data:`MAX_PATTERN` characters,
  and of a safe form: no repetition of something that can itself repeat or
  choose (``(a+)+``, ``(a|aa)*``), no back-references, no look-around, so no
  path can make it backtrack catastrophically (paths longer than
  :data:`MAX_PATH` are never matched at all);
- ``GET,HEAD /api/status``: the same, for these methods only (any method
  without them).

In the environment and on the command line entries are comma-separated, so
``GET,HEAD /api/status`` and ``^/a{1,3}$`` are read back whole
(:func:`join_entries`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal

from ..errors import ConfigurationError

__all__ = ["MAX_PATH", "MAX_PATTERN", "PathRule", "join_entries", "parse_entry"]

MAX_PATTERN: Final = 256
MAX_PATH: Final = 2048
_METHODS = re.compile(r"[A-Z]+(,[A-Z]+)*")


@dataclass(frozen=True, slots=True)
class PathRule:
    """One entry: which methods (``None``: any), and the path it names."""

    methods: frozenset[str] | None
    kind: Literal["exact", "below", "regex"]
    #: the path, the prefix (ending in ``/``) or the pattern
    path: str


def join_entries(pieces: tuple[str, ...]) -> tuple[str, ...]:
    """Entries split at every comma, put back together: a method list joins the path that
    follows it, and a pattern runs up to its ``$``."""
    out: list[str] = []
    pending: list[str] = []
    for piece in pieces:
        pending.append(piece)
        joined = ",".join(pending)
        if _METHODS.fullmatch(joined):
            continue  # only methods so far: their path follows
        _, path = _split_methods(joined)
        if path.startswith("^") and not path.endswith("$"):
            continue  # a pattern with a comma in it: read on
        out.append(joined)
        pending = []
    if pending:
        out.append(",".join(pending))  # left as it is: parse_entry says what is wrong
    return tuple(out)


def _split_methods(entry: str) -> tuple[str | None, str]:
    head, sep, rest = entry.partition(" ")
    if sep and _METHODS.fullmatch(head):
        return head, rest.strip()
    return None, entry.strip()


def parse_entry(entry: str, prefix: str) -> PathRule:
    """One entry as a :class:`PathRule`; a mistake is a ConfigurationError naming
    ``public_paths``. ``prefix``: the gate's own endpoints, never public."""
    methods_text, path = _split_methods(entry)
    methods = frozenset(methods_text.split(",")) if methods_text else None
    if path.startswith("^"):
        _check_pattern(entry, path)
        return PathRule(methods, "regex", path)
    if not path.startswith("/"):
        raise _bad(entry, "must start with '/' (a path) or '^' (a pattern), after any methods")
    if "*" in path[:-1] or (path.endswith("*") and not path.endswith("/*")):
        raise _bad(entry, "only a trailing '/*' wildcard is allowed (or write a ^...$ pattern)")
    if path == prefix or path.startswith(prefix + "/"):
        raise _bad(entry, "is inside the gate's prefix")
    if path.endswith("/*"):
        return PathRule(methods, "below", path[:-1])
    return PathRule(methods, "exact", path)


def _bad(entry: str, problem: str) -> ConfigurationError:
    return ConfigurationError("public_paths", f"{entry!r} {problem}")


def _check_pattern(entry: str, pattern: str) -> None:
    if not pattern.endswith("$") or pattern.endswith("\\$"):
        raise _bad(entry, "a pattern must be anchored: ^ at the start, $ at the end")
    if len(pattern) > MAX_PATTERN:
        raise _bad(entry, f"a pattern may be {MAX_PATTERN} characters at most")
    try:
        from re import _parser  # type: ignore[attr-defined]  # the stdlib's own reading

        tree = _parser.parse(pattern)
    except re.error as exc:
        raise _bad(entry, f"is not a regular expression: {exc}") from None
    problem = _unsafe(tree, inside_repeat=False)
    if problem:
        raise _bad(entry, problem)


_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")


def _unsafe(tree: Any, *, inside_repeat: bool) -> str | None:
    """Why the parsed pattern could backtrack catastrophically, or ``None``."""
    for op, arg in tree:
        name = str(op)
        if name in ("GROUPREF", "GROUPREF_EXISTS"):
            return "a pattern may not use back-references"
        if name in ("ASSERT", "ASSERT_NOT"):
            return "a pattern may not use look-ahead or look-behind"
        if name in _REPEATS:
            if inside_repeat:
                return "a pattern may not repeat what already repeats, like (a+)+"
            low, high, sub = arg
            if high != low and _can_vary(sub):
                return "a pattern may not repeat what can match in several ways, like (a|aa)*"
            problem = _unsafe(sub, inside_repeat=high != low)
            if problem:
                return problem
        elif name == "SUBPATTERN":
            problem = _unsafe(arg[-1], inside_repeat=inside_repeat)
            if problem:
                return problem
        elif name == "BRANCH":
            for branch in arg[1]:
                problem = _unsafe(branch, inside_repeat=inside_repeat)
                if problem:
                    return problem
        elif name == "ATOMIC_GROUP":
            problem = _unsafe(arg, inside_repeat=False)  # an atomic group never backtracks
            if problem:
                return problem
    return None


def _can_vary(tree: Any) -> bool:
    """Whether a repeated part can match in more than one way (a choice, or a repeat)."""
    for op, arg in tree:
        name = str(op)
        if name == "BRANCH" or name in _REPEATS:
            return True
        if name == "SUBPATTERN" and _can_vary(arg[-1]):
            return True
    return False
