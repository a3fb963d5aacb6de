"""The gate's own replies as Django responses.

A :class:`~oakid_gate.gate.replies.Reply` becomes an ``HttpResponse`` with its
status, headers and body (none for ``HEAD``, its length kept). Its ``Set-Cookie``
lines go out exactly as the core wrote them: a Django response keeps one value
per header name, so each is a cookie of the response whose text is the line
itself (:class:`RawCookie`), which Django's WSGI and ASGI handlers and its test
client read like any other cookie.
"""

from __future__ import annotations

from http.cookies import Morsel
from typing import Any

from django.http import HttpRequest, HttpResponse

from ..gate.replies import Reply

__all__ = ["RawCookie", "reply_response"]


class RawCookie(Morsel[str]):
    """A cookie whose ``Set-Cookie`` value is ``header``, unchanged."""

    def __init__(self, header: str) -> None:
        super().__init__()
        name, _, coded = header.split(";", 1)[0].partition("=")
        coded = coded.strip()
        quoted = len(coded) >= 2 and coded[0] == coded[-1] == '"'
        self.set(name.strip(), coded[1:-1] if quoted else coded, coded)
        self._header = header

    def OutputString(self, attrs: Any = None) -> str:  # Morsel's name
        return self._header

    def __reduce__(self) -> Any:  # copies (Django's test client keeps its cookies)
        return (RawCookie, (self._header,))


def reply_response(reply: Reply, request: HttpRequest) -> HttpResponse:
    """``reply`` as the response to ``request``."""
    head = request.method == "HEAD"
    response = HttpResponse(b"" if head else reply.body, status=reply.status)
    del response["Content-Type"]  # the reply's own, or none (a redirect)
    for name, value in reply.headers:
        if name.lower() == "set-cookie":
            cookie = RawCookie(value)
            response.cookies[cookie.key] = cookie
        elif name in response:
            response[name] = f"{response[name]}, {value}"
        else:
            response[name] = value
    response["Content-Length"] = str(len(reply.body))
    return response
