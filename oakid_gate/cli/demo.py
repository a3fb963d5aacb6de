"""The dev-idp and a protected example app.

Start the dev-idp and an example app behind the gate, with a generated
secret, and print the URL to open and the demo users.
"""

from __future__ import annotations

import argparse
import secrets
import sys

from ..settings import Settings
from .options import add_serving, int_option

__all__ = ["add_arguments", "main"]


def add_arguments(demo: argparse.ArgumentParser) -> None:
    add_serving(demo)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", help="default: OAKID_PORT or 8000")
    demo.add_argument("--idp-port", help="default: OAKID_IDP_PORT or 9000")


def main(args: argparse.Namespace) -> int:
    # The dev IdP and the demo app load for this command only (start-up of the others).
    from ..asgi import OakIDMiddleware
    from ..demo import demo_app
    from ..devidp import DEMO_USERS, DevClient, DevIdPConfig, create_app
    from ..serve import serve_asgi

    port = int_option("port", args.port, env_default=8000)
    idp_port = int_option("idp_port", args.idp_port, env_default=9000)
    issuer = f"http://{args.host}:{idp_port}"
    client_id, client_secret = "oak_demo", secrets.token_urlsafe(32)
    idp = create_app(DevIdPConfig(issuer=issuer, clients=(DevClient(client_id, client_secret),)))
    settings = Settings.load(
        issuer=issuer,
        client_id=client_id,
        client_secret=client_secret,
        secret=secrets.token_urlsafe(32),
        host=args.host,
        port=port,
        public_paths=["/public"],
        app_name="oakid-gate demo",
    )
    print("oakid-gate demo")
    print(f"  open:     http://{args.host}:{port}/")
    print(f"  provider: {issuer} (the dev-idp)")
    print("  users:    " + ", ".join(f"{u.username} / {u.password}" for u in DEMO_USERS))
    print("  stop:     Ctrl-C")
    sys.stdout.flush()
    serve_asgi(
        [
            (idp, args.host, idp_port),
            (OakIDMiddleware(demo_app(f"{issuer}/oauth/userinfo"), settings), args.host, port),
        ],
        log_level=args.log_level.lower(),
        access_log=args.access_log,
    )
    return 0
