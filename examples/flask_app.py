"""A Flask app behind oakid-gate: ``OakID(app)``, ``current_user`` and ``login_required``.

Settings come from ``app.config["OAKID_*"]`` or ``OAKID_*`` variables
(``OAKID_ISSUER``, ``OAKID_CLIENT_ID``, ``OAKID_CLIENT_SECRET``, ``OAKID_SECRET``,
...). Serve it with any WSGI server::

    gunicorn --bind 127.0.0.1:8000 examples.flask_app:app
"""

from __future__ import annotations

from flask import Flask, request

from oakid_gate.flask import OakID, current_user, login_required

oakid = OakID()  # unbound: the factory below installs it


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["OAKID_PUBLIC_PATHS"] = ["/health"]
    oakid.init_app(app)  # the gate on app.wsgi_app; settings checked now

    @app.get("/")
    def home() -> dict[str, str | None]:
        return {
            "hello": current_user.display_name,
            "email": current_user.email,
            "remote_user": request.remote_user,  # Flask's own view of REMOTE_USER
        }

    @app.get("/health")
    def health() -> dict[str, bool]:
        return {"ok": True, "signed_in": current_user.is_authenticated}

    @app.get("/admin")
    @login_required(groups=["admins"])  # 403 for a signed-in user outside "admins"
    def admin() -> dict[str, str]:
        return {"admin": current_user.display_name}

    return app


app = create_app()
