"""Any Python web app behind the gate: ``protect(app)`` and ``oakid-gate run``.

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

The servers of ``oakid-gate run``
=================================

- ASGI apps run on **uvicorn**, as the rest of oakid-gate does. With
  ``--workers N`` uvicorn starts N processes of its own, which import the app
  by name: each builds it with :func:`app_from_environment`, from
  ``OAKID_RUN_APP`` and the ``OAKID_*`` settings that the parent, having
  checked them, puts in their environment (never on a command line, which
  every user of the machine can read).
- WSGI apps run on **gunicorn**, with threaded (``gthread``) workers: a
  pre-forking WSGI server made for production, which keeps a WSGI app in the
  plain threads it was written for, restarts a worker that dies, and shuts
  down gracefully. Bridging WSGI onto uvicorn (``a2wsgi``) was the other
  choice; it would put every request through a thread pool behind an event
  loop and leave the worker supervision to uvicorn's younger multiprocess
  mode, for no gain. Workers are forked from the parent after the settings
  were checked and the app imported (as ``gunicorn --preload`` would, except
  that each worker builds its own middleware, HTTP client and store
  connections), so no setting travels through the environment at all.

Both servers are told to believe no forwarding headers of their own
(uvicorn's ``proxy_headers``, gunicorn's ``forwarded_allow_ips`` and
``forwarder_headers``): ``trusted_proxies`` alone decides, in the gate.
gunicorn's control socket is off: several gates on one machine would
otherwise share its path.

Several workers need a store they can share: ``--workers`` above 1 with
``memory://`` refuses to start.

:func:`app_from_environment` also serves servers of your own choice:
``uvicorn --factory oakid_gate.serve:app_from_environment`` or
``gunicorn 'oakid_gate.serve:app_from_environment()'`` with ``OAKID_RUN_APP``
and the settings in the environment.
"""

from __future__ import annotations

import inspect
import logging
import os
from typing import Any, Literal

from .asgi import OakIDMiddleware
from .errors import ConfigurationError
from .settings import Secret, Settings, setting_fields
from .stores import store_for
from .wsgi import OakIDWSGIMiddleware

__all__ = ["Interface", "app_from_environment", "detect_interface", "protect", "run_app"]

log = logging.getLogger("oakid_gate")

Interface = Literal["asgi", "wsgi"]

#: the environment variable that names the app for :func:`app_from_environment`
RUN_APP_VARIABLE = "OAKID_RUN_APP"
#: and the one that skips the detection there (``asgi`` or ``wsgi``)
RUN_INTERFACE_VARIABLE = "OAKID_RUN_INTERFACE"

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
    if _already_protected(app):
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


def app_from_environment() -> OakIDMiddleware | OakIDWSGIMiddleware:
    """The app named by ``OAKID_RUN_APP``, protected with the ``OAKID_*`` settings."""
    from .cli import load_app

    target = os.environ.get(RUN_APP_VARIABLE)
    if not target:
        raise ConfigurationError("app", f"set {RUN_APP_VARIABLE}=module:attribute")
    raw = os.environ.get(RUN_INTERFACE_VARIABLE) or None
    if raw not in (None, "asgi", "wsgi"):
        raise ConfigurationError("interface", f"{RUN_INTERFACE_VARIABLE} must be asgi or wsgi")
    interface: Interface | None = "asgi" if raw == "asgi" else "wsgi" if raw == "wsgi" else None
    return protect(load_app(target), Settings.load(), interface=interface)


# ---------------------------------------------------------------- oakid-gate run


def run_app(
    target: str,
    settings: Settings,
    *,
    workers: int = 1,
    threads: int = 8,
    interface: Interface | None = None,
    log_level: str = "info",
) -> None:
    """Serve the app named ``target`` (``module:attribute``) behind the gate, until stopped.

    Everything is checked here, once, before a server or a worker starts:
    the settings (already loaded), the store (opened and closed again), the
    worker count against the store, the app and its interface.
    """
    from .cli import load_app

    if workers < 1:
        raise ConfigurationError("workers", "must be at least 1")
    if threads < 1:
        raise ConfigurationError("threads", "must be at least 1")
    store = store_for(settings)
    try:
        if workers > 1 and not store.shared:
            scheme = settings.session_store.partition("://")[0]
            raise ConfigurationError(
                "session_store",
                f"{scheme}:// keeps sessions inside one process, so with --workers {workers} "
                "users would be signed out at random; choose a shared store: "
                "sqlite:///path.db (one host) or redis://host:port/0 (several hosts)",
            )
    finally:
        store.close()
    app = load_app(target)
    kind = interface or detect_interface(app)
    if _already_protected(app):
        raise ConfigurationError(
            "app",
            f"{target} already has the oakid-gate middleware in front of it: serve it with "
            "uvicorn or gunicorn directly, or remove the middleware and let run add it",
        )
    server = "uvicorn" if kind == "asgi" else f"gunicorn, {threads} threads each"
    log.info(
        "serving %s (%s) behind the gate on http://%s:%s with %d worker process(es) (%s)",
        target,
        kind.upper(),
        _url_host(settings.host),
        settings.port,
        workers,
        server,
    )
    if kind == "wsgi":
        _serve_wsgi(app, settings, workers=workers, threads=threads, log_level=log_level)
        return
    import uvicorn

    from .logs import uvicorn_log_config

    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "proxy_headers": False,  # the gate's own trusted_proxies decides
        "server_header": False,
        "lifespan": "auto",
        "log_level": log_level,
        "log_config": uvicorn_log_config(),  # no code or state in the access log
    }
    if workers == 1:
        uvicorn.run(OakIDMiddleware(app, settings), **options)
        return
    # uvicorn's workers are fresh interpreters that import the app by name.
    os.environ.update(worker_environment(settings))
    for f in setting_fields():
        if getattr(settings, f.name) is None:
            os.environ.pop(f"OAKID_{f.name.upper()}", None)
    os.environ[RUN_APP_VARIABLE] = target
    os.environ[RUN_INTERFACE_VARIABLE] = kind
    uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=workers, **options)


def worker_environment(settings: Settings) -> dict[str, str]:
    """``settings`` as ``OAKID_*`` variables that :meth:`Settings.load` reads back the same.

    Unset optional settings (``None``) are left out: remove them from the
    environment too. The result holds secrets: it belongs in a child's
    environment, never on a command line or in a log.
    """
    env: dict[str, str] = {}
    for f in setting_fields():
        value = getattr(settings, f.name)
        if value is None:
            continue
        if isinstance(value, tuple):
            text = ",".join(v.reveal() if isinstance(v, Secret) else str(v) for v in value)
        elif isinstance(value, Secret):
            text = value.reveal()
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        env[f"OAKID_{f.name.upper()}"] = text
    return env


def _serve_wsgi(
    app: Any, settings: Settings, *, workers: int, threads: int, log_level: str
) -> None:
    from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

    options: dict[str, Any] = {
        "bind": [f"{_url_host(settings.host)}:{settings.port}"],
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "loglevel": log_level,
        "errorlog": "-",
        "proc_name": "oakid-gate",
        # The gate's trusted_proxies decides what forwarded headers mean.
        "forwarded_allow_ips": "",
        "forwarder_headers": "",
        "secure_scheme_headers": {},
        "proxy_protocol": "off",
        # Several gunicorns on one machine would share the default socket path.
        "control_socket_disable": True,
    }

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for name, value in options.items():
                if name in self.cfg.settings:  # older gunicorns lack some settings
                    self.cfg.set(name, value)

        def load(self) -> OakIDWSGIMiddleware:
            # In each worker, after the fork: its own HTTP client and store.
            return OakIDWSGIMiddleware(app, settings)

    Server().run()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


# ---------------------------------------------------------------- helpers


def _already_protected(app: Any) -> bool:
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
