"""Serving apps: ``oakid-gate run``, the server of every command, loading an app.

Loading: :func:`load_app` imports ``module:attribute`` (the current directory
is importable); a mistake is a :class:`~oakid_gate.errors.ConfigurationError`
naming the ``app`` setting. :func:`serve_asgi` runs one or more ASGI apps on
uvicorn in one process, as ``proxy``, ``dev-idp`` and ``demo`` do, with the
same options as ``run`` (:func:`uvicorn_options`).

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

import asyncio
import importlib
import logging
import os
import sys
from collections.abc import Iterable
from typing import Any, cast

from .asgi import OakIDMiddleware
from .errors import ConfigurationError
from .logs import gunicorn_logger_class, uvicorn_log_config
from .protect import Interface, already_protected, detect_interface, protect
from .settings import Secret, Settings, setting_fields
from .stores import store_for
from .wsgi import OakIDWSGIMiddleware

__all__ = [
    "WriteBatch",
    "app_from_environment",
    "batched_httptools_protocol",
    "load_app",
    "run_app",
    "serve_asgi",
    "uvicorn_options",
    "worker_environment",
]

log = logging.getLogger("oakid_gate")

#: the environment variable that names the app for :func:`app_from_environment`
RUN_APP_VARIABLE = "OAKID_RUN_APP"
#: and the one that skips the detection there (``asgi`` or ``wsgi``)
RUN_INTERFACE_VARIABLE = "OAKID_RUN_INTERFACE"


def load_app(target: str) -> Any:
    """Import ``module:attribute`` (the current directory is importable)."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ConfigurationError("app", f"{target!r} is not of the form module:attribute")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError("app", f"cannot import {module_name!r}: {exc}") from None
    app = module
    for part in attr.split("."):
        try:
            app = getattr(app, part)
        except AttributeError:
            raise ConfigurationError("app", f"{module_name!r} has no attribute {attr!r}") from None
    return app


def app_from_environment() -> OakIDMiddleware | OakIDWSGIMiddleware:
    """The app named by ``OAKID_RUN_APP``, protected with the ``OAKID_*`` settings."""
    target = os.environ.get(RUN_APP_VARIABLE)
    if not target:
        raise ConfigurationError("app", f"set {RUN_APP_VARIABLE}=module:attribute")
    raw = os.environ.get(RUN_INTERFACE_VARIABLE) or None
    if raw not in (None, "asgi", "wsgi"):
        raise ConfigurationError("interface", f"{RUN_INTERFACE_VARIABLE} must be asgi or wsgi")
    interface: Interface | None = "asgi" if raw == "asgi" else "wsgi" if raw == "wsgi" else None
    return protect(load_app(target), Settings.load(), interface=interface)


# ---------------------------------------------------------------- uvicorn


def uvicorn_options(host: str, port: int, log_level: str, access_log: bool) -> dict[str, Any]:
    """How every command runs uvicorn: uvloop and httptools where installed (they are
    dependencies), no forwarded headers believed, the access log only when asked for
    (and then with codes, ``state`` and tokens redacted)."""
    return {
        "host": host,
        "port": port,
        "loop": "auto",
        "http": "auto",
        "proxy_headers": False,  # the gate's own trusted_proxies decides
        "server_header": False,
        "lifespan": "auto",
        "log_level": log_level,
        "access_log": access_log,
        "log_config": uvicorn_log_config(),  # no code or state in the access log
    }


def serve_asgi(
    apps: list[tuple[Any, str, int]],
    *,
    log_level: str = "info",
    access_log: bool = False,
    batch_writes: bool = False,
) -> None:
    """Serve each ``(app, host, port)`` on uvicorn, in this process, until stopped.

    ``batch_writes``: each connection's writes of one event-loop turn go out as
    one (:class:`WriteBatch`), where uvicorn runs on httptools.
    """
    import uvicorn

    protocol = batched_httptools_protocol() if batch_writes else None
    configs = []
    for app, host, port in apps:
        options = uvicorn_options(host, port, log_level, access_log)
        if protocol is not None:
            options["http"] = protocol
        configs.append(uvicorn.Config(app, **options))
    servers = [uvicorn.Server(config) for config in configs]

    async def serve_all() -> None:
        await asyncio.gather(*(s.serve() for s in servers))

    # The loop uvicorn would choose itself (uvloop when installed), as Server.run does.
    factory = configs[0].get_loop_factory() or asyncio.new_event_loop
    loop = factory()
    try:
        loop.run_until_complete(serve_all())
    finally:
        loop.close()


class WriteBatch:
    """A transport whose writes in one event-loop turn go out in one ``write``.

    uvicorn writes a response's status line and headers, then its body: two
    ``send()`` system calls for most answers, the costliest thing a proxied
    request does after reading. Batched, they are one (measured: a fifth less
    CPU per request in ``oakid-gate proxy``). The first write of a turn asks the
    loop to flush at the end of it; ``close`` and ``write_eof`` flush first;
    everything else is the transport's own.
    """

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def writelines(self, lines: Iterable[bytes]) -> None:
        for data in lines:
            self.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(d) for d in self._pending)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))


def batched_httptools_protocol() -> type[asyncio.Protocol] | None:
    """uvicorn's httptools protocol over a :class:`WriteBatch`; ``None`` without httptools."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return None

    class BatchedWrites(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # The running loop, not uvicorn's attribute for it: one coupling fewer.
            batch = WriteBatch(cast(asyncio.Transport, transport), asyncio.get_running_loop())
            super().connection_made(cast(asyncio.Transport, batch))

    return BatchedWrites


# ---------------------------------------------------------------- oakid-gate run


def run_app(
    target: str,
    settings: Settings,
    *,
    workers: int = 1,
    threads: int = 8,
    interface: Interface | None = None,
    log_level: str = "info",
    access_log: bool = False,
) -> None:
    """Serve the app named ``target`` (``module:attribute``) behind the gate, until stopped.

    Everything is checked here, once, before a server or a worker starts:
    the settings (already loaded), the store (opened and closed again), the
    worker count against the store, the app and its interface.
    """
    _check_workers(settings, workers, threads)
    app = load_app(target)
    kind = interface or detect_interface(app)
    if already_protected(app):
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
        _serve_wsgi(
            app,
            settings,
            workers=workers,
            threads=threads,
            log_level=log_level,
            access_log=access_log,
        )
    else:
        _serve_asgi_app(
            target, app, settings, workers=workers, log_level=log_level, access_log=access_log
        )


def _check_workers(settings: Settings, workers: int, threads: int) -> None:
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


def _serve_asgi_app(
    target: str, app: Any, settings: Settings, *, workers: int, log_level: str, access_log: bool
) -> None:
    import uvicorn

    if workers == 1:
        # In this process: one write per response, as `proxy` does.
        serve_asgi(
            [(OakIDMiddleware(app, settings), settings.host, settings.port)],
            log_level=log_level,
            access_log=access_log,
            batch_writes=True,
        )
        return
    options = uvicorn_options(settings.host, settings.port, log_level, access_log)
    # uvicorn's workers are fresh interpreters that import the app by name.
    os.environ.update(worker_environment(settings))
    for f in setting_fields():
        if getattr(settings, f.name) is None:
            os.environ.pop(f"OAKID_{f.name.upper()}", None)
    os.environ[RUN_APP_VARIABLE] = target
    os.environ[RUN_INTERFACE_VARIABLE] = "asgi"
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
    app: Any, settings: Settings, *, workers: int, threads: int, log_level: str, access_log: bool
) -> None:
    from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

    options: dict[str, Any] = {
        "bind": [f"{_url_host(settings.host)}:{settings.port}"],
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "loglevel": log_level,
        "errorlog": "-",
        "logger_class": gunicorn_logger_class(),  # JSON lines under --log-format json
        # The access log, when asked for, names the path only: a query may hold a
        # code or a state (%(U)s is the path without it); no Referer either.
        "accesslog": "-" if access_log else None,
        "access_log_format": '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms',
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
