"""Which paths are the gate's own: the prefix test every request passes first.

The hot path tests ``prefix <= path < prefix_end`` (:func:`~oakid_gate.gate.gate.prefix_end`)
where it tested ``path.startswith(prefix)`` (a generic call on Python 3.11, the dearest
test of a request). A path beside the prefix (one code point above or below it, a longer
segment, another letter case, a NUL, the highest code point) must never be taken for one
of the gate's endpoints, and no gate path for the app's: in the core (the WSGI and Django
adapters ask :meth:`Gate.hot_target`) and in the ASGI adapter's own pre-filter.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from oakid_gate import OakIDMiddleware
from oakid_gate.gate import Gate
from oakid_gate.gate.gate import prefix_end
from oakid_gate.settings import Settings
from oakid_gate.testing import session_cookie

MAX = "\U0010ffff"
#: mount prefixes the settings accept, with last code points at the edges
PREFIXES = ["/oauth2", "/_gate", "/a", "/über", "/x\uffff", "/x" + MAX, "/" + MAX * 2, "/z\x7f"]
#: characters at the edges of the order, and the ones paths are made of
EDGES = st.sampled_from(["/", "0", ".", "\x00", "\x7f", "\uffff", MAX, "O", "o", "2", "3", "1"])
TEXT = st.text(st.one_of(EDGES, st.characters()), max_size=12)


def _gates_own(prefix: str, path: str) -> bool:
    """The rule, written with ``startswith``: the prefix itself, or a path under it."""
    return path == prefix or path.startswith(prefix + "/")


def _neighbours(prefix: str) -> list[str]:
    """Paths that share all but a little of a gate path under ``prefix``, and are none."""
    last = ord(prefix[-1])
    near = [prefix[:-1] + chr(c) for c in (last - 1, last + 1) if 0 <= c <= 0x10FFFF]
    near += [prefix + "0", prefix + "\x00", prefix + MAX, prefix[:-1], prefix.upper()]
    near += [prefix.lower(), "/" + prefix, prefix + "-", prefix + "."]
    paths = [p + tail for p in near for tail in ("/ping", "/auth", "")]
    return [path for path in paths if not _gates_own(prefix, path)]


@given(prefix=TEXT.filter(lambda p: p.rstrip(MAX) != ""), tail=TEXT, data=st.data())
@settings(max_examples=400, deadline=None)
def test_prefix_end_bounds_exactly_the_paths_that_start_with_the_prefix(
    prefix: str, tail: str, data: Any
) -> None:
    """``prefix <= path < prefix_end(prefix)`` is ``path.startswith(prefix)``, for paths
    under the prefix, beside it, and anything at all."""
    end = prefix_end(prefix)
    cut = data.draw(st.integers(0, len(prefix)))
    for path in (prefix + tail, prefix[:cut] + tail, tail, *_neighbours(prefix)):
        assert (prefix <= path < end) == path.startswith(prefix), (prefix, path)


@cache
def _gate(prefix: str) -> Gate:
    return Gate(
        Settings.load(env={}, client_id="c", client_secret="cs", secret="s" * 32, prefix=prefix)
    )


@given(prefix=st.sampled_from(PREFIXES), tail=TEXT, data=st.data())
@settings(max_examples=400, deadline=None)
def test_a_path_beside_the_prefix_is_never_a_gate_endpoint_in_the_core(
    prefix: str, tail: str, data: Any
) -> None:
    """:meth:`Gate.hot_target` (what WSGI and Django ask) says "app" for every path that is
    not the gate's, and never "app" for one that is."""
    gate = _gate(prefix)
    near = data.draw(st.sampled_from(_neighbours(prefix)))
    for path in (prefix + tail, prefix + "/" + tail, near + tail, tail, near):
        target = gate.hot_target(path, "GET")
        assert (target != "app") == _gates_own(prefix, path), (prefix, path, target)


async def _app_page(request: Request) -> PlainTextResponse:
    return PlainTextResponse("the app")


async def _status(app: OakIDMiddleware, path: str, cookie: str = "") -> tuple[int, bytes]:
    """GET ``path`` (any text: ASGI paths are decoded) as an API client, with ``cookie``."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode("utf-8", "surrogatepass"),
        "root_path": "", "query_string": b"", "server": ("t", 80), "client": ("127.0.0.1", 5),
        "headers": [(b"host", b"t"), (b"accept", b"application/json")],
    }  # fmt: skip
    if cookie:
        scope["headers"].append((b"cookie", cookie.encode()))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def _gated(prefix: str) -> OakIDMiddleware:
    return OakIDMiddleware(
        Starlette(routes=[Route("/{rest:path}", _app_page)]),
        client_id="c", client_secret="cs", secret="s" * 32, issuer="http://127.0.0.1:9",
        prefix=prefix,
    )  # fmt: skip


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_a_path_beside_the_prefix_is_never_a_gate_endpoint_in_asgi(prefix: str) -> None:
    """Through the ASGI adapter's pre-filter: ``prefix/ping`` is the gate's (200 ``OK``,
    no session needed) and the prefix itself too (the gate's 404); every neighbour is the
    app's, so it needs a session (401), and the app is never reached without one."""
    app = _gated(prefix)
    assert await _status(app, prefix + "/ping") == (200, b"OK")
    status, body = await _status(app, prefix)
    assert status == 404 and b"the app" not in body
    for path in _neighbours(prefix):
        status, body = await _status(app, path)
        assert (status, b"unauthenticated" in body) == (401, True), (prefix, path, status)


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_a_signed_in_request_to_a_gate_path_never_reaches_the_app(prefix: str) -> None:
    """With a session (the hot path's case): every gate path is answered by the gate, never
    forwarded to the app as a page of its own; every neighbour is the app's page."""
    app = _gated(prefix)
    name, value = session_cookie(app, {"sub": "ann", "email": "ann@example.test"})
    cookie = f"{name}={value}"
    assert await _status(app, prefix + "/ping", cookie) == (200, b"OK")
    for path in (prefix, prefix + "/", prefix + "/nothing", prefix + "/" + MAX):
        status, body = await _status(app, path, cookie)
        assert status == 404 and b"the app" not in body, (prefix, path, status)
    for path in _neighbours(prefix):
        assert await _status(app, path, cookie) == (200, b"the app"), (prefix, path)
