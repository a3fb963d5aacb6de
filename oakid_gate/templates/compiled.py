"""The page templates compiled by Jinja2 (imported when templates are first compiled:
``import oakid_gate`` does not import Jinja2)."""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Mapping
from typing import Any

import jinja2

from ..errors import ConfigurationError
from . import _COMMON, _MAY_BE_NONE, PAGE_VARIABLES, PAGES

__all__ = ["PageTemplates"]


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
