"""Finding the gate in front of an app, from the app or from a test client.

:func:`find_gate` takes a test client (Starlette's ``TestClient``, an
``httpx.Client`` / ``httpx.AsyncClient`` on an ``ASGITransport`` or
``WSGITransport``, Flask's ``app.test_client()``), an app, or the gate itself,
and returns the :class:`~oakid_gate.asgi.OakIDMiddleware` or
:class:`~oakid_gate.wsgi.OakIDWSGIMiddleware` that serves it. It looks:

- at the object itself, and through the ``app`` / ``application`` /
  ``wsgi_app`` attributes that middleware, test clients and Flask use;
- at Flask's ``app.extensions["oakid"].middleware`` (:class:`oakid_gate.flask.OakID`);
- through the transport of an httpx client;
- through a Starlette or FastAPI app's middleware stack
  (``app.add_middleware(OakIDMiddleware, ...)``). Starlette builds that stack
  at the first request; if it is not built yet it is built here, once, and
  kept, exactly as the first request would (so the gate found is the gate that
  serves, with the same store). Middleware cannot be added afterwards.

A gate that none of these reach (inside a framework's own wrapper, a mounted
sub-app) is passed explicitly: ``sign_in(client, gate=gate)``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from starlette.applications import Starlette

from ..adapter import GateAdapter

__all__ = ["find_gate"]

#: where apps, middleware and test clients keep what they wrap
_WRAPPED = ("app", "application", "wsgi_app", "middleware_stack", "_transport", "_mounts")
_MAX_STEPS = 64


def find_gate(target: object) -> GateAdapter[Any, Any]:
    """The oakid-gate middleware serving ``target`` (a test client, an app or the
    gate); ``LookupError`` naming what to do when there is none."""
    seen: set[int] = set()
    todo: deque[object] = deque([target])
    while todo and len(seen) < _MAX_STEPS:
        item = todo.popleft()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, GateAdapter):
            return item
        todo.extend(_wrapped(item))
    raise LookupError(
        f"no oakid-gate middleware found in front of {type(target).__name__}: wrap the app "
        "in OakIDMiddleware / OakIDWSGIMiddleware (or OakID(app) in Flask), or pass gate="
    )


def _wrapped(item: object) -> list[object]:
    """What ``item`` wraps or serves, in the order to look at."""
    found: list[object] = []
    extensions = _attr(item, "extensions")
    if isinstance(extensions, dict) and "oakid" in extensions:  # Flask: OakID(app)
        found.append(_attr(extensions["oakid"], "middleware"))
    if isinstance(item, Starlette) and item.middleware_stack is None:
        # What Starlette does at the first request; kept, so the gate found serves.
        item.middleware_stack = item.build_middleware_stack()
    for name in _WRAPPED:
        value = _attr(item, name)
        if isinstance(value, dict):  # httpx's mounts: {pattern: transport}
            found.extend(value.values())
        elif value is not None and not isinstance(value, (str, bytes, int, float)):
            found.append(value)
    return found


def _attr(item: object, name: str) -> object:
    """``item.name``, or ``None`` when reading it fails in any way (a proxy outside
    its context, a property with side effects gone wrong)."""
    try:
        return getattr(item, name, None)
    except Exception:
        return None
