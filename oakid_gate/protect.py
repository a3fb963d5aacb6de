"""Any Python web app behind the gate: ``protect(app)`` picks the middleware it needs.

::

    import oakid_gate

    app = oakid_gate.protect(app, client_id="oak_...", client_secret="...", secret="...")

or, with no code at all, ``oakid-gate run module:app [--workers N]``.

Telling ASGI from WSGI
======================

An ASGI app (Starlette, FastAPI, Quart, Django's ``get_asgi_application()``)
comes back wrapped in :class:`~oakid_gate.asgi.OakIDMiddleware`; a WSGI app
(Flask, Django's ``get_wsgi_application()``, any ``app(environ,
start_response)``) in :class:`~oakid_gate.wsgi.OakIDWSGIMiddleware`. The kind
is told from the callable alone; the app is never called:

- a coroutine function, or an object with a coroutine ``__call__``, that
  takes ``(scope, receive, send)``: ASGI;
- a plain callable that takes exactly three positional arguments: ASGI (an
  ASGI 3 app that returns an awaitable without being a coroutine function);
- a plain callable that takes exactly two: WSGI.

Anything else (``*args`` signatures, ASGI 2 single-argument apps, classes,
objects that are not callable) is a :class:`~oakid_gate.errors.ConfigurationError`
that says what was found: pass ``interface="asgi"`` or ``interface="wsgi"``
(``--interface`` on the command line), or wrap the app with the middleware
yourself. An app that already has the gate in front of it is refused: two
gates would each want a sign-in of their own.

Flask: ``protect(flask_app)`` returns a new WSGI callable and leaves the Flask
object as it was, so serve what it returns (``oakid-gate run``, gunicorn).
Whatever takes the Flask object itself (``flask run``, ``app.run()``,
``app.test_client()``) would bypass the gate; for those, install the gate on
the app: ``app.wsgi_app = OakIDWSGIMiddleware(app.wsgi_app, ...)`` or
:class:`oakid_gate.flask.OakID`.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

from .asgi import OakIDMiddleware
from .errors import ConfigurationError
from .settings import Settings
from .wsgi import OakIDWSGIMiddleware

__all__ = ["Interface", "already_protected", "detect_interface", "protect"]

Interface = Literal["asgi", "wsgi"]

_GATES = (OakIDMiddleware, OakIDWSGIMiddleware)


def protect(
    app: Any,
    settings: Settings | None = None,
    *,
    interface: Interface | None = None,
    **kwargs: Any,
) -> OakIDMiddleware | OakIDWSGIMiddleware:
    """Wrap ``app`` in the middleware its interface needs.

    ``settings`` and ``kwargs`` (settings, ``store=``, ``http=``) go to the
    middleware as they are; ``interface`` skips the detection.
    """
    if interface is None:
        interface = detect_interface(app)
    elif interface not in ("asgi", "wsgi"):
        raise ConfigurationError("interface", "must be 'asgi' or 'wsgi'")
    if already_protected(app):
        raise ConfigurationError(
            "app",
            f"{_describe(app)} already has the oakid-gate middleware in front of it; "
            "serve it as it is, or remove that middleware and protect it here",
        )
    if interface == "asgi":
        return OakIDMiddleware(app, settings, **kwargs)
    return OakIDWSGIMiddleware(app, settings, **kwargs)


def detect_interface(app: Any) -> Interface:
    """``"asgi"`` or ``"wsgi"`` for ``app``, or a :class:`ConfigurationError` saying why not."""
    what = _describe(app)
    if inspect.isclass(app):
        raise ConfigurationError("app", f"{what} is a class; pass the app (an instance of it)")
    if not callable(app):
        raise ConfigurationError("app", f"{what} is not callable, so it is neither ASGI nor WSGI")
    call = app if inspect.isroutine(app) else getattr(app, "__call__", app)  # noqa: B004
    is_coroutine = inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(app)
    try:
        signature: inspect.Signature | None = inspect.signature(app)
    except (TypeError, ValueError):
        signature = None
    takes_3, takes_2 = _accepts(signature, 3), _accepts(signature, 2)
    if is_coroutine and takes_3:
        return "asgi"
    if not is_coroutine and takes_3 != takes_2:
        return "asgi" if takes_3 else "wsgi"
    found = (
        "an async callable" if is_coroutine else "a callable"
    ) + f" taking {_parameters(signature)}"
    raise ConfigurationError(
        "app",
        f"cannot tell whether {what} is ASGI or WSGI: it is {found}; an ASGI app takes "
        "(scope, receive, send), a WSGI app (environ, start_response). "
        "Pass interface='asgi' or interface='wsgi' (or --interface with oakid-gate run)",
    )


# ---------------------------------------------------------------- helpers


def already_protected(app: Any) -> bool:
    if isinstance(app, _GATES) or isinstance(getattr(app, "wsgi_app", None), _GATES):
        return True
    # Starlette and FastAPI: app.add_middleware(OakIDMiddleware, ...)
    middleware = getattr(app, "user_middleware", None)
    if isinstance(middleware, list):
        return any(getattr(m, "cls", None) in _GATES for m in middleware)
    return False


def _accepts(signature: inspect.Signature | None, count: int) -> bool:
    """Whether a call with ``count`` positional arguments (and no others) fits."""
    if signature is None:
        return False
    required = total = 0
    for p in signature.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            total += 1
            required += p.default is p.empty
        elif p.kind is p.VAR_POSITIONAL:
            total = 1 << 16
        elif p.kind is p.KEYWORD_ONLY and p.default is p.empty:
            return False
    return required <= count <= total


def _parameters(signature: inspect.Signature | None) -> str:
    return "an unknown signature" if signature is None else str(signature)


def _describe(app: Any) -> str:
    if inspect.isclass(app) or inspect.isroutine(app):
        return f"{getattr(app, '__module__', '?')}.{getattr(app, '__qualname__', app)!s}"
    cls = type(app)
    return f"a {cls.__module__}.{cls.__qualname__} object"
