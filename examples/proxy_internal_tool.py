"""An internal tool that knows nothing of OpenID Connect, behind ``oakid-gate proxy``.

The tool is a small team notice board written with the standard library only
(it could be any HTTP service, in any language). It trusts the
``X-Forwarded-User``, ``-Email`` and ``-Preferred-Username`` headers that the
proxy sets for a signed-in user, and listens on loopback so that nothing but
the proxy can reach it. Run it, then the proxy in front of it::

    python examples/proxy_internal_tool.py --port 3000 &

    # a provider: here the local dev-idp (sign in as alice / alice)
    export OAKID_CLIENT_SECRET=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')
    oakid-gate dev-idp --port 9000 --client-id oak_tool &

    OAKID_ISSUER=http://127.0.0.1:9000 OAKID_CLIENT_ID=oak_tool \\
    OAKID_SECRET=$(python -c 'import secrets; print(secrets.token_urlsafe(32))') \\
    oakid-gate proxy --upstream http://127.0.0.1:3000 --port 8000 --public-paths /health

and open http://127.0.0.1:8000/. ``/health`` is public: it is forwarded
without a user, and the tool answers it without asking for one.

Whoever can reach the tool directly can claim to be anyone, so it must listen
only where the proxy alone reaches it (loopback here, or a private network):
the proxy removes every client-sent copy of these headers, but only for
requests that pass through it.
"""

from __future__ import annotations

import argparse
import html
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

NOTES: list[tuple[str, str]] = []
NOTES_LOCK = threading.Lock()
MAX_NOTE = 500


class Tool(BaseHTTPRequestHandler):
    server_version = "notice-board"

    def user(self) -> str | None:
        """The signed-in user as the proxy vouches for it (UTF-8 header bytes)."""
        raw = self.headers.get("X-Forwarded-Preferred-Username") or self.headers.get(
            "X-Forwarded-User"
        )
        return raw.encode("latin-1").decode("utf-8", "replace") if raw else None

    def do_GET(self) -> None:
        if self.path == "/health":
            self.reply(200, "text/plain; charset=utf-8", b"ok\n")
            return
        user = self.user()
        if user is None:
            self.reply(403, "text/plain; charset=utf-8", b"sign in through the proxy\n")
            return
        with NOTES_LOCK:
            notes = list(NOTES)
        items = "".join(
            f"<li><b>{html.escape(who)}</b>: {html.escape(text)}</li>" for who, text in notes
        )
        email = self.headers.get("X-Forwarded-Email", "")
        page = (
            "<!doctype html><meta charset=utf-8><title>Notice board</title>"
            f"<h1>Notice board</h1><p>Signed in as <b id=user>{html.escape(user)}</b>"
            f" ({html.escape(email)})</p><ul>{items}</ul>"
            "<form method=post action=/notes><input name=text maxlength=500>"
            "<button>Post</button></form>"
            '<form method=post action="/oauth2/sign_out?rd=/"><button>Sign out</button></form>'
        )
        self.reply(200, "text/html; charset=utf-8", page.encode())

    def do_POST(self) -> None:
        user = self.user()
        if user is None or self.path != "/notes":
            self.reply(403, "text/plain; charset=utf-8", b"forbidden\n")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > 4 * MAX_NOTE:
            self.reply(413, "text/plain; charset=utf-8", b"too long\n")
            return
        form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        text = form.get("text", [""])[0].strip()[:MAX_NOTE]
        if text:
            with NOTES_LOCK:
                NOTES.append((user, text))
        self.send_response(303)
        self.send_header("Location", "/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="keep it on loopback")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Tool)
    print(f"notice board on http://{args.host}:{args.port} (reach it through the proxy)")
    server.serve_forever()


if __name__ == "__main__":
    main()
