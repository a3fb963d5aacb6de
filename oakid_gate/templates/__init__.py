"""The gate's HTML pages as Jinja2 templates: the built-in set, and ``templates_dir``'s.

The pages a visitor may see are four templates, each given the variables below
(and every page's) by the core (:mod:`oakid_gate.gate.pages`):

``error.html``
    ``status`` (the HTTP status), ``message`` (what happened), ``next_step``
    (what to do now), ``retry_url`` (where to sign in again, or ``None``).
``not_allowed.html``
    the 403 of a signed-in user the rules refuse: ``message``, ``missing`` (what
    the user lacks, e.g. ``membership of one of the groups: admins``),
    ``sign_out_url``.
``sign_out.html``
    the sign-out confirmation: ``action`` (where the form posts), ``csrf_token``
    (``None``: nobody is signed in here), ``cancel_url``.
``signed_out.html``
    the page after signing out.

Every page gets ``app_name`` (the ``app_name`` setting, else the site's
host), ``logo_url`` (or ``None``), ``user`` (the signed-in user's name, or
``None``), ``title``, ``reference`` (a short id that is also in the log line
of the event, or ``None``), ``home_url`` and ``sign_in_url``. The built-in
pages extend ``base.html``, whose ``<style>`` holds ``style.css`` and then
``custom.css`` (empty): a ``custom.css`` in ``templates_dir`` restyles the
pages, e.g. ``:root{--accent:#b00020}``.

A file of ``templates_dir`` replaces the built-in file of the same name;
the others stay. With ``templates_dir``, every template is read, compiled and
rendered once with sample values when the settings are loaded, so a missing
file, a syntax error or an unknown variable (``StrictUndefined``) is a start-up
error that names the file. The built-in set alone (tested with the package) is
compiled, with the same checks, when the first page is shown, so a gate that
never shows one never imports Jinja2 (start-up time). Values are HTML-escaped
(autoescaping is on). Nothing is read from disk after that: the compiled
templates render from memory.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .compiled import PageTemplates

__all__ = ["PAGES", "PAGE_VARIABLES", "BuiltinTemplates", "Templates", "load_templates"]

#: the templates the core renders
PAGES = ("error.html", "not_allowed.html", "sign_out.html", "signed_out.html")
_SUFFIXES = (".html", ".css")

#: sample values of the variables every page is given (``None`` where it may be)
_COMMON: dict[str, Any] = {
    "app_name": "Example Tools",
    "logo_url": "/logo.svg",
    "user": "Alice Example",
    "title": "A page",
    "reference": "4f9c2d1e8a7b6c5d",
    "home_url": "/",
    "sign_in_url": "/oauth2/start?rd=/",
}
#: the variables each page is given besides :data:`_COMMON`'s, with sample values
PAGE_VARIABLES: dict[str, dict[str, Any]] = {
    "error.html": {
        "status": 503,
        "message": "The identity provider did not answer.",
        "next_step": "Try again in a moment.",
        "retry_url": "/oauth2/start?rd=/",
    },
    "not_allowed.html": {
        "message": "You are signed in, but this site requires membership of admins.",
        "missing": "membership of one of the groups: admins",
        "sign_out_url": "/oauth2/sign_out",
    },
    "sign_out.html": {
        "action": "/oauth2/sign_out",
        "csrf_token": "0" * 64,
        "cancel_url": "/",
    },
    "signed_out.html": {},
}
_MAY_BE_NONE = frozenset({"logo_url", "user", "reference", "retry_url", "csrf_token"})


def _builtin_sources() -> dict[str, tuple[str, str]]:
    folder = resources.files(__name__)
    return {
        entry.name: (entry.read_text(encoding="utf-8"), f"built-in {entry.name}")
        for entry in folder.iterdir()
        if entry.name.endswith(_SUFFIXES)
    }


def _folder_sources(templates_dir: str) -> dict[str, tuple[str, str]]:
    folder = Path(templates_dir)
    if not folder.is_dir():
        raise ConfigurationError("templates_dir", f"{templates_dir!r} is not a folder")
    sources = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name.endswith(_SUFFIXES):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigurationError("templates_dir", f"cannot read {path}: {exc}") from None
            sources[path.relative_to(folder).as_posix()] = (text, str(path))
    return sources


class Templates(Protocol):
    """What the core renders pages with (:class:`oakid_gate.gate.pages.Renderer`)."""

    def render(self, name: str, context: Mapping[str, Any]) -> str: ...


@functools.lru_cache(maxsize=1)
def _builtin() -> PageTemplates:
    from .compiled import PageTemplates

    return PageTemplates(_builtin_sources())


class BuiltinTemplates:
    """The built-in pages, compiled at the first render (once per process)."""

    _lock = threading.Lock()

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        with self._lock:  # one compile, whichever thread shows the first page
            templates = _builtin()
        return templates.render(name, context)


def load_templates(templates_dir: str | None = None) -> Templates:
    """The built-in pages (compiled when first shown), or with the files of
    ``templates_dir`` in place of theirs, compiled and checked now: a
    ConfigurationError naming the file when one cannot be read, compiled or rendered."""
    if templates_dir is None:
        return BuiltinTemplates()
    from .compiled import PageTemplates

    return PageTemplates({**_builtin_sources(), **_folder_sources(templates_dir)})
