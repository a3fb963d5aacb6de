"""Flask helpers: the gate installed on the app, and the signed-in user in views.

::

    from flask import Flask
    from oakid_gate.flask import OakID, current_user

    app = Flask(__name__)
    OakID(app)  # settings from OAKID_* variables, or OakID(app, client_id=..., ...)

    @app.get("/")
    def home() -> str:
        return f"Hello, {current_user.display_name} ({current_user.email})"

:class:`OakID` puts :class:`~oakid_gate.wsgi.OakIDWSGIMiddleware` on
``app.wsgi_app``, so every way of serving the Flask object goes through the
gate: ``flask run``, gunicorn, ``app.test_client()``. Flask's own
``request.remote_user`` is the ``user_claim``.

:data:`current_user` is the :class:`~oakid_gate.user.OakIDUser` of the request.
On a ``public_paths`` request without a session it is an anonymous user: check
``current_user.is_authenticated`` there before reading anything else. Outside
the gate (the middleware not installed) using it raises ``RuntimeError``, so a
missing gate is never mistaken for a signed-out user. :func:`current_session`
is the :class:`~oakid_gate.user.SessionView` (a fresh access token for calling
APIs), or ``None`` when nobody is signed in.

This module needs Flask (``pip install flask``); the rest of oakid-gate does not.
"""

from __future__ import annotations

from typing import Any, cast

try:
    from flask import Flask, request
    from werkzeug.local import LocalProxy
except ImportError as exc:  # pragma: no cover - exercised without Flask installed
    raise ImportError(
        "oakid_gate.flask needs Flask, which is not installed: pip install flask"
    ) from exc

from .settings import Settings
from .stores import SessionStore
from .user import OakIDUser, SessionView
from .wsgi import OakIDWSGIMiddleware

__all__ = ["OakID", "current_session", "current_user"]


class OakID:
    """The gate in front of a Flask app: ``OakID(app, **settings)`` or ``init_app`` later."""

    def __init__(
        self,
        app: Flask | None = None,
        settings: Settings | None = None,
        *,
        store: SessionStore | None = None,
        **kwargs: Any,
    ) -> None:
        self.settings = settings if settings is not None else Settings.load(**kwargs)
        self._store = store
        self.middleware: OakIDWSGIMiddleware | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Install the gate on ``app.wsgi_app``."""
        if isinstance(app.wsgi_app, OakIDWSGIMiddleware):
            raise RuntimeError("this Flask app already has the oakid-gate middleware")
        self.middleware = OakIDWSGIMiddleware(app.wsgi_app, self.settings, store=self._store)
        app.wsgi_app = self.middleware  # type: ignore[method-assign]
        app.extensions["oakid"] = self


def _current_user() -> OakIDUser:
    try:
        user = request.environ["oakid.user"]
    except KeyError:
        raise RuntimeError(
            "no oakid-gate user on this request: install the gate with OakID(app) "
            "or app.wsgi_app = OakIDWSGIMiddleware(app.wsgi_app, ...)"
        ) from None
    return cast(OakIDUser, user)


#: the signed-in user of the current request (anonymous on a public path)
current_user: OakIDUser = cast(OakIDUser, LocalProxy(_current_user))


def current_session() -> SessionView | None:
    """The session of the current request (access token, claims), or ``None``."""
    if "oakid.user" not in request.environ:
        _current_user()  # raises: the gate is not installed
    view = request.environ.get("oakid")
    return view if isinstance(view, SessionView) else None
