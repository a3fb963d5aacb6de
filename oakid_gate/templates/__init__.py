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
the others stay. Every template is read, compiled and rendered once with sample
values when the settings are loaded, so a missing file, a syntax error or an
unknown variable (``StrictUndefined``) is a start-up error that names the file.
Values are HTML-escaped (autoescaping is on). After start-up nothing is read
from disk: :class:`PageTemplates` renders from memory.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from ..errors import ConfigurationError

__all__ = ["PAGES", "PAGE_VARIABLES", "PageTemplates", "load_templates"]

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


class PageTemplates:
    """Compiled page templates, rendered from memory (no I/O after start-up)."""

    def __init__(self, sources: Mapping[str, tuple[str, str]]) -> None:
        """``sources``: template name -> (text, the file it came from)."""
        self._files = {name: file for name, (_, file) in sources.items()}
        self._env = jinja2.Environment(
            loader=_MemoryLoader(sources),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            auto_reload=False,
            cache_size=-1,
            keep_trailing_newline=False,
        )
        self._pages: dict[str, jinja2.Template] = {}
        for name in sorted(sources):
            template = self._guarded(name, functools.partial(self._env.get_template, name))
            if name in PAGES:
                self._pages[name] = template
        for name in PAGES:
            for context in _samples(name):
                self._guarded(name, functools.partial(self.render, name, context))

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        """Page ``name`` (one of :data:`PAGES`) with ``context``."""
        return self._pages[name].render(context)

    def file(self, name: str) -> str:
        """The file template ``name`` was read from."""
        return self._files.get(name, name)

    def _guarded(self, name: str, step: Callable[[], Any]) -> Any:
        """``step()``; a template error becomes a ConfigurationError naming the file."""
        try:
            return step()
        except jinja2.TemplateError as exc:
            where = _failing_file(exc, set(self._files.values())) or self.file(name)
            line = f" line {exc.lineno}" if isinstance(exc, jinja2.TemplateSyntaxError) else ""
            raise ConfigurationError(
                "templates_dir", f"{where}{line}: {exc.message or type(exc).__name__}"
            ) from None


class _MemoryLoader(jinja2.BaseLoader):
    """Templates held in memory, each with the file it came from (for error messages)."""

    def __init__(self, sources: Mapping[str, tuple[str, str]]) -> None:
        self._sources = dict(sources)

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        if template not in self._sources:
            raise jinja2.TemplateNotFound(template)
        text, file = self._sources[template]
        return text, file, lambda: True


def _samples(name: str) -> list[dict[str, Any]]:
    """The sample contexts page ``name`` is rendered with at start-up: every variable
    set, then every optional one ``None`` (both branches of an ``{% if %}``)."""
    full = {**_COMMON, **PAGE_VARIABLES[name]}
    sparse = {k: (None if k in _MAY_BE_NONE else v) for k, v in full.items()}
    return [full, sparse]


def _failing_file(exc: BaseException, files: set[str]) -> str | None:
    """The template file a render error was raised in (the innermost frame of one)."""
    if isinstance(exc, jinja2.TemplateSyntaxError) and exc.filename:
        return exc.filename
    found = None
    tb: types.TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in files:
            found = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return found


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


@functools.lru_cache(maxsize=1)
def _builtin() -> PageTemplates:
    return PageTemplates(_builtin_sources())


def load_templates(templates_dir: str | None = None) -> PageTemplates:
    """The built-in pages, with the files of ``templates_dir`` in place of theirs;
    a ConfigurationError naming the file when one cannot be read, compiled or rendered."""
    if templates_dir is None:
        return _builtin()
    return PageTemplates({**_builtin_sources(), **_folder_sources(templates_dir)})
