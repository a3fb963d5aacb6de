"""Return targets (``rd``): only a path on this site, never anywhere else.

Browsers are generous with what they take as another host: ``//evil``,
``/\\evil``, ``/\tevil``, ``https:evil``, percent-encoded variants of each.
Rather than predict every reading, :func:`safe_return_to` accepts a narrow
shape (an absolute path made of printable ASCII, no backslash, not starting
with two slashes) and checks it again after each of up to three rounds of
percent-decoding (still a path, still not two slashes, no backslash, no
control character; encoded spaces and non-ASCII letters are fine there), and
answers ``"/"`` for anything else. The gate then sends the browser to the site's own
origin followed by that path, so even an odd path cannot leave the site.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

__all__ = ["safe_return_to"]

_MAX_LENGTH = 2048


def safe_return_to(target: str | None, default: str = "/") -> str:
    """``target`` if it is a same-origin path (with query), else ``default``."""
    if not target or len(target) > _MAX_LENGTH:
        return default
    if not _plain(target):
        return default
    decoded = target
    for _ in range(3):  # look through up to three layers of percent-encoding
        decoded = unquote(decoded)
        if not _path_like(decoded):
            return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def _path_like(value: str) -> bool:
    """A decoded layer: still one absolute path, with no control characters."""
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return False
    return not any(ord(c) < 32 or ord(c) == 127 for c in value)


def _plain(value: str) -> bool:
    if not value.startswith("/") or value.startswith("//"):
        return False
    if "\\" in value:
        return False
    # printable ASCII only: no controls, no spaces, no look-alike characters
    return all(33 <= ord(c) < 127 for c in value)
