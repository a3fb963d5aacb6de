"""Flask helpers: the gate installed on the app, the user in views, a route's own rules.

::

    from flask import Flask
    from oakid_gate.flask import OakID, current_user, login_required

    app = Flask(__name__)
    OakID(app)  # settings from app.config["OAKID_*"], OAKID_* variables, or OakID(app, client_id=...)

    @app.get("/")
    def home() -> str:
        return f"Hello, {current_user.display_name} ({current_user.email})"

    @app.get("/admin")
    @login_required(groups=["admins"], claims={"department": "eng"})
    def admin() -> str: ...

The factory pattern works too: ``oakid = OakID()`` at module level (nothing is
read yet), ``oakid.init_app(app)`` in ``create_app()``; each app gets a gate of
its own, ``app.extensions["oakid"]`` (an :class:`OakIDState`: its ``settings``
and ``middleware``).

Settings, strongest first: a ``settings`` object (used as it is), else keyword
arguments of ``OakID(...)``, then ``app.config["OAKID_<NAME>"]`` (read by
``init_app``; a key naming no setting is an error), then ``OAKID_<NAME>``
environment variables, then the config file, then defaults.

:class:`OakID` puts :class:`~oakid_gate.wsgi.OakIDWSGIMiddleware` on
``app.wsgi_app``, so every way of serving the Flask object goes through the
gate: ``flask run``, gunicorn, ``app.test_client()``. Flask's own
``request.remote_user`` is the ``user_claim``.

:data:`current_user` is the :class:`~oakid_gate.user.OakIDUser` of the request,
or on a ``public_paths`` request without a session
:data:`~oakid_gate.user.ANONYMOUS` (the same attributes, empty). Both follow
Flask-Login's user protocol (``is_authenticated``, ``is_active``,
``is_anonymous``, ``get_id()``). Outside the gate (the middleware not installed)
using it raises ``RuntimeError``, so a missing gate is never mistaken for a
signed-out user. :func:`current_session` is the
:class:`~oakid_gate.user.SessionView` (a fresh access token for calling APIs),
or ``None`` when nobody is signed in.

:func:`login_required` guards a view (``@login_required`` alone: signed in;
with ``groups``, ``claims``, ``scopes``: rules of its own, checked by the gate's
:class:`~oakid_gate.gate.authorization.Rules`). It answers as the gate does: a
browser navigation with nobody signed in goes into the sign-in, anything else
gets the 401 JSON; a user the rules refuse gets the 403 page (JSON for API
clients) naming what is missing.

This module needs Flask (``pip install 'oakid-gate[flask]'``); the rest of
oakid-gate does not.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast, overload

try:
    from flask import Flask, Response, current_app, request
    from werkzeug.local import LocalProxy
except ImportError as exc:  # pragma: no cover - exercised without Flask installed
    raise ImportError(
        "oakid_gate.flask needs Flask, which is not installed: pip install flask"
    ) from exc

from .errors import ConfigurationError
from .gate.authorization import RouteRules
from .settings import Settings, setting_fields
from .settings.sources import FILE_SETTINGS
from .stores import SessionStore
from .user import OakIDAnonymousUser, OakIDUser, SessionView
from .wsgi import OakIDWSGIMiddleware

__all__ = [
    "OakID",
    "OakIDState",
    "config_settings",
    "current_session",
    "current_user",
    "login_required",
]

F = TypeVar("F", bound=Callable[..., Any])

#: the settings ``app.config`` may hold, as ``OAKID_<NAME>``
_CONFIG_NAMES = frozenset(
    {f.name for f in setting_fields()} | {"config"} | set(FILE_SETTINGS.values())
)


class OakID:
    """The gate in front of a Flask app: ``OakID(app, **settings)``, or ``OakID(**settings)``
    and ``init_app(app)`` later (see the module's docs for where settings come from)."""

    def __init__(
        self,
        app: Flask | None = None,
        settings: Settings | None = None,
        *,
        store: SessionStore | None = None,
        **kwargs: Any,
    ) -> None:
        self._settings = settings
        self._kwargs = kwargs
        self._store = store
        #: the settings and the middleware of the app last given to :meth:`init_app`
        self.settings: Settings | None = settings
        self.middleware: OakIDWSGIMiddleware | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Install the gate on ``app.wsgi_app``, its settings read now (checked: a mistake
        is a :class:`~oakid_gate.errors.ConfigurationError` naming the setting)."""
        if isinstance(app.wsgi_app, OakIDWSGIMiddleware):
            raise RuntimeError("this Flask app already has the oakid-gate middleware")
        settings = self._settings
        if settings is None:
            settings = Settings.load(**{**config_settings(app.config), **self._kwargs})
        self.settings = settings
        self.middleware = OakIDWSGIMiddleware(app.wsgi_app, settings, store=self._store)
        app.wsgi_app = self.middleware  # type: ignore[method-assign]
        app.extensions["oakid"] = OakIDState(self, settings, self.middleware)


@dataclass(frozen=True, slots=True)
class OakIDState:
    """One Flask app's gate, as ``app.extensions["oakid"]`` holds it."""

    extension: OakID
    settings: Settings
    middleware: OakIDWSGIMiddleware


def config_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a Flask ``app.config`` holds as ``OAKID_<NAME>`` keys, by name."""
    found = {}
    for key, value in config.items():
        if key.startswith("OAKID_"):
            name = key[len("OAKID_") :].lower()
            if name not in _CONFIG_NAMES:
                raise ConfigurationError(name, f'app.config["{key}"] names no setting')
            found[name] = value
    return found


def _current_user() -> OakIDUser | OakIDAnonymousUser:
    try:
        user = request.environ["oakid.user"]
    except KeyError:
        raise RuntimeError(
            "no oakid-gate user on this request: install the gate with OakID(app) "
            "or app.wsgi_app = OakIDWSGIMiddleware(app.wsgi_app, ...)"
        ) from None
    return cast("OakIDUser | OakIDAnonymousUser", user)


#: the signed-in user of the current request (:data:`~oakid_gate.user.ANONYMOUS` on a
#: public path without a session)
current_user: OakIDUser | OakIDAnonymousUser = cast(
    "OakIDUser | OakIDAnonymousUser", LocalProxy(_current_user)
)


def current_session() -> SessionView | None:
    """The session of the current request (access token, claims), or ``None``."""
    if "oakid.user" not in request.environ:
        _current_user()  # raises: the gate is not installed
    view = request.environ.get("oakid")
    return view if isinstance(view, SessionView) else None


@overload
def login_required(view: F, /) -> F: ...


@overload
def login_required(
    *,
    groups: str | Iterable[str] = (),
    claims: Mapping[str, Any] | Iterable[str] = (),
    scopes: str | Iterable[str] = (),
) -> Callable[[F], F]: ...


def login_required(
    view: Callable[..., Any] | None = None,
    /,
    *,
    groups: str | Iterable[str] = (),
    claims: Mapping[str, Any] | Iterable[str] = (),
    scopes: str | Iterable[str] = (),
) -> Any:
    """Guard a view: signed in (``@login_required``), and in one of ``groups``, with every
    ``claims`` entry and every ``scopes`` entry (``@login_required(groups=[...])``)."""
    rules = RouteRules(groups=groups, claims=claims, scopes=scopes)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            refusal = _refusal(rules)
            if refusal is not None:
                return refusal
            return current_app.ensure_sync(view)(*args, **kwargs)

        return cast(F, guarded)

    return decorate if view is None else decorate(view)


def _refusal(rules: RouteRules) -> Response | None:
    """The gate's answer to the current request on a view guarded by ``rules``."""
    environ = request.environ
    gate = environ.get("oakid.gate")
    if not isinstance(gate, OakIDWSGIMiddleware):
        _current_user()  # raises: the gate is not installed
        raise RuntimeError("the oakid-gate middleware is not in front of this app")
    view = environ.get("oakid")
    scopes = view.scopes if isinstance(view, SessionView) else ()
    user = environ.get("oakid.user")
    reply = gate.gate.route_reply(gate.gate_request(environ), user, scopes, rules)
    if reply is None:
        return None
    return Response(reply.body, reply.status, headers=list(reply.headers))
