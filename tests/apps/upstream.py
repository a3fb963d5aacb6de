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
The gate and the dev-idp around it are started with :mod:`peers.gate`.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from peers.ports import free_port, wait_for_port
from peers.process import Running, spawn

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


async def _respond(
    send: Any, body: bytes, status: int = 200, headers: list[Any] | None = None
) -> None:
    """One whole response, with its Content-Length."""
    length = (b"content-length", str(len(body)).encode())
    await send(
        {"type": "http.response.start", "status": status, "headers": [length, *(headers or [])]}
    )
    await send({"type": "http.response.body", "body": body})


async def _json(send: Any, body: Any, status: int = 200, headers: list[Any] | None = None) -> None:
    await _respond(
        send,
        json.dumps(body).encode(),
        status,
        [(b"content-type", b"application/json"), *(headers or [])],
    )


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
        await _respond(send, b"", 302, [(b"location", b"/landing?from=redirect")])
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
        gzipped = [(b"content-type", b"text/plain"), (b"content-encoding", b"gzip")]
        await _respond(send, gzip.compress(GZIP_TEXT, mtime=0), 200, gzipped)
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


def start_upstream(workdir: Path) -> Running:
    """Serve :data:`app` with uvicorn on a free loopback port, in a process of its own."""
    port = free_port()
    log_path = workdir / "upstream.log"
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
        cwd=Path(__file__).resolve().parent.parent,
    )
    wait_for_port(port, process=process)
    return Running(process, port, log_path)
