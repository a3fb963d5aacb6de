"""A test upstream service for the proxy and nginx suites: a plain ASGI app.

It knows nothing of the gate; it reports what reached it::

    GET  /anything        the request as JSON: method, path, raw_path, query, headers
    GET  /download?size=N N bytes (64 KiB chunks, Content-Length; see :func:`pattern_sha256`)
    POST /upload          counts and hashes the body as it arrives, never holding it
    GET  /redirect        302 with a relative Location
    GET  /cookies         two Set-Cookie lines
    GET  /gzip            a gzip-encoded body (Content-Encoding: gzip)
    GET  /slow?seconds=S  answers after S seconds
    GET  /hop             a response with hop-by-hop headers of its own
    WS   /ws              echo; "headers" answers the handshake headers as JSON,
                          "close" closes with 4001 "bye"

Served by uvicorn in a process of its own (:func:`start_upstream`), so that a
100 MB transfer does not share the test's interpreter with the proxy under test.

Also here, for the proxy and nginx suites alike: the processes around it (the
dev-idp, a gate started with the ``oakid-gate`` command) and a scripted
sign-in at the dev-idp.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any
from urllib.parse import parse_qs

import httpx

CHUNK = 64 * 1024
GZIP_TEXT = b"compressed text, forwarded as it is\n" * 100


def pattern_chunks(size: int) -> list[tuple[int, int]]:
    return [(start, min(CHUNK, size - start)) for start in range(0, size, CHUNK)]


def pattern_sha256(size: int) -> str:
    """The SHA-256 of what ``/download?size=N`` sends."""
    block = hashlib.sha256(b"oakid").digest() * (CHUNK // 32)
    digest = hashlib.sha256()
    for _, length in pattern_chunks(size):
        digest.update(block[:length])
    return digest.hexdigest()


def _headers_json(scope: dict[str, Any]) -> list[list[str]]:
    return [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]


async def _json(send: Any, body: Any, status: int = 200, headers: list[Any] | None = None) -> None:
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await _websocket(scope, receive, send)
        return
    path = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    if path == "/download":
        size = int(query.get("size", "0"))
        block = hashlib.sha256(b"oakid").digest() * (CHUNK // 32)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/octet-stream"),
                    (b"content-length", str(size).encode()),
                ],
            }
        )
        for _, length in pattern_chunks(size):
            await send({"type": "http.response.body", "body": block[:length], "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return

    digest = hashlib.sha256()
    count = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        digest.update(chunk)
        count += len(chunk)
        if not message.get("more_body", False):
            break

    if path == "/upload":
        await _json(send, {"bytes": count, "sha256": digest.hexdigest()})
    elif path == "/redirect":
        await send(
            {
                "type": "http.response.start",
                "status": 302,
                "headers": [(b"location", b"/landing?from=redirect"), (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})
    elif path == "/cookies":
        await _json(
            send,
            {"ok": True},
            headers=[
                (b"set-cookie", b"first=1; Path=/; HttpOnly"),
                (b"set-cookie", b"second=2; Path=/app; SameSite=Strict"),
            ],
        )
    elif path == "/gzip":
        data = gzip.compress(GZIP_TEXT, mtime=0)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/plain"),
                    (b"content-encoding", b"gzip"),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})
    elif path == "/slow":
        await asyncio.sleep(float(query.get("seconds", "1")))
        await _json(send, {"slept": True})
    elif path == "/hop":
        await _json(
            send,
            {"hop": True},
            headers=[
                (b"connection", b"x-hop-secret"),
                (b"x-hop-secret", b"1"),
                (b"keep-alive", b"timeout=5"),
                (b"x-end-to-end", b"kept"),
            ],
        )
    else:
        await _json(
            send,
            {
                "method": scope["method"],
                "client": list(scope["client"] or ()),
                "path": path,
                "raw_path": scope.get("raw_path", b"").decode("latin-1"),
                "query": scope["query_string"].decode("latin-1"),
                "headers": _headers_json(scope),
                "body_bytes": count,
            },
        )


async def _websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if scope["path"] != "/ws":
        await send({"type": "websocket.close", "code": 1008})
        return
    offered = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text == "headers":
            await send({"type": "websocket.send", "text": json.dumps(_headers_json(scope))})
        elif text == "close":
            await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
            return
        elif text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


# ---------------------------------------------------------------- as a process


def start_upstream(workdir: Path) -> Process:
    """Serve :data:`app` with uvicorn on a free loopback port, in a process of its own."""
    from peers.ports import free_port, wait_for_port
    from peers.process import spawn

    port = free_port()
    log_path = workdir / "upstream.log"
    tests_dir = Path(__file__).resolve().parent.parent
    process = spawn(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "apps.upstream:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        log_path=log_path,
        cwd=tests_dir,
    )
    wait_for_port(port, process=process)
    return Process(process, port, log_path)


def _executable() -> str:
    return str(Path(sys.executable).with_name("oakid-gate"))


def _clean_env(**settings: str) -> dict[str, str]:
    """This environment without OAKID_* variables, plus ``settings`` as OAKID_<NAME>."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAKID_")}
    env.update({f"OAKID_{name.upper()}": value for name, value in settings.items()})
    return env


@dataclass
class Process:
    """A command started for a test, on a loopback port."""

    process: Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        from peers.process import terminate

        terminate(self.process)


@dataclass
class DevIdP(Process):
    client_id: str = "oak_gate_tests"
    client_secret: str = ""


def start_dev_idp(workdir: Path) -> DevIdP:
    """``oakid-gate dev-idp`` on a free port, one client (any loopback redirect URI)."""
    from peers.ports import free_port, wait_for_port
    from peers.process import spawn

    port = free_port()
    secret = secrets.token_urlsafe(32)
    log_path = workdir / "dev-idp.log"
    process = spawn(
        [_executable(), "dev-idp", "--port", str(port), "--client-id", "oak_gate_tests"],
        log_path=log_path,
        env=_clean_env(client_secret=secret),
    )
    wait_for_port(port, process=process, timeout=20)
    return DevIdP(process, port, log_path, "oak_gate_tests", secret)


def start_gate(
    workdir: Path, command: list[str], *, port: int | None = None, **settings: str
) -> Process:
    """``oakid-gate COMMAND...`` with ``settings`` as OAKID_* variables (secrets stay
    out of the process list), on ``port`` or a free one; waits until it listens."""
    from peers.ports import free_port, wait_for_port
    from peers.process import spawn

    port = port or free_port()
    settings.setdefault("secret", secrets.token_urlsafe(32))
    log_path = workdir / f"gate-{command[0]}-{port}.log"
    process = spawn(
        [_executable(), *command],
        log_path=log_path,
        env=_clean_env(host="127.0.0.1", port=str(port), **settings),
    )
    try:
        wait_for_port(port, process=process, timeout=20)
    except (RuntimeError, TimeoutError) as exc:
        raise RuntimeError(f"{exc}; its log:\n{log_path.read_text(errors='replace')}") from None
    return Process(process, port, log_path)


#: what a browser sends on a top-level navigation
NAVIGATION = {
    "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
}


def dev_idp_sign_in(http: httpx.Client, url: str, username: str = "alice") -> httpx.Response:
    """Open ``url`` as a browser would and sign in at the dev-idp as ``username``.

    GET ``url`` (302 to the provider, possibly through the gate's /start), one
    POST of the authorize parameters with the credentials and consent (302 to
    the callback), the callback (302 back), and the final GET, whose response
    is returned. Redirects are followed by hand, each checked.
    """
    response = http.get(url, headers=NAVIGATION)
    steps = 0
    while response.is_redirect and "/oauth/authorize" not in response.headers["location"]:
        response = http.get(response.url.join(response.headers["location"]), headers=NAVIGATION)
        steps += 1
        assert steps < 5, "never redirected to the provider"
    assert response.is_redirect, f"{response.status_code}: {response.text[:300]}"
    authorize = httpx.URL(response.headers["location"])
    form = {
        **dict(authorize.params),
        "username": username,
        "password": username,
        "consent": "approve",
    }
    approved = http.post(authorize.copy_with(query=None), data=form)
    assert approved.status_code == 302, approved.text[:500]
    callback = http.get(approved.headers["location"], headers=NAVIGATION)
    assert callback.is_redirect, f"{callback.status_code}: {callback.text[:500]}"
    return http.get(callback.url.join(callback.headers["location"]), headers=NAVIGATION)
