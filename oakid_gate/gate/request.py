"""What the gate knows of a request, and the facts it derives from it.

Adapters read a :class:`GateRequest` from the ASGI scope or the WSGI environ:
plain values, only the headers in :data:`GATE_HEADERS`, the cookies already
parsed. Everything else about the request (what kind it is, which origin it
came to) is decided here, once, for every adapter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

from ..errors import BadRequest
from ..settings import Settings

__all__ = [
    "GATE_HEADERS",
    "GateRequest",
    "Origin",
    "is_navigation",
    "pick_request_id",
    "single_params",
]

#: the request headers the gate reads; adapters pass only these (lower case)
GATE_HEADERS = frozenset(
    {
        "cookie",
        "accept",
        "authorization",
        "host",
        "origin",
        "sec-fetch-mode",
        "sec-fetch-site",
        "sec-fetch-dest",
        "x-requested-with",
        "x-forwarded-proto",
        "x-forwarded-host",
        "content-type",
        "access-control-request-method",
        "x-request-id",
    }
)

#: a request id a client (or a proxy in front) may give: short, plain characters
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def pick_request_id(header: str | None, generated: str) -> str:
    """The request's id for the log: its ``X-Request-ID`` when that is short and plain
    (so a proxy's id follows the request), else ``generated``."""
    if header is not None and _REQUEST_ID.fullmatch(header):
        return header
    return generated


#: characters a return path keeps as they are (RFC 3986 ``pchar`` and ``/``)
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


@dataclass(frozen=True, slots=True)
class GateRequest:
    """What the gate needs to know of a request."""

    method: str
    scheme: str  # after trusted_proxies: the scheme the client used
    path: str  # percent-decoded, as in the ASGI scope and PATH_INFO
    query_string: str
    headers: Mapping[str, str]  # lower-case names, only GATE_HEADERS
    cookies: Mapping[str, str]
    client: str | None = None
    #: the id the log lines of this request carry (:func:`pick_request_id`)
    request_id: str = ""
    #: the mount prefix the server says the app is under (SCRIPT_NAME, ASGI root_path)
    root_path: str = ""
    #: the path the app routes on (PATH_INFO, ASGI path less root_path); ``path`` if None
    app_path: str | None = None

    @property
    def routed_path(self) -> str:
        """The path the app will route this request on: what public paths are judged on."""
        return self.path if self.app_path is None else self.app_path

    @property
    def url_path(self) -> str:
        """The path and query to come back to after signing in."""
        path = quote(self.path, safe=_PATH_SAFE)
        return path + ("?" + self.query_string if self.query_string else "")

    def accepts_html(self) -> bool:
        return "text/html" in self.headers.get("accept", "")

    def params(self) -> dict[str, str]:
        """The query's parameters, each at most once (:func:`single_params`)."""
        return single_params(self.query_string)


#: parameters named in the message when repeated (any other name stays unsaid)
_NAMED = frozenset({"state", "code", "iss", "error", "error_description", "rd", "csrf"})
#: more fields than any request to the gate has: a longer query is refused unread
MAX_FIELDS = 64


def single_params(text: str) -> dict[str, str]:
    """Query or form parameters, each at most once.

    RFC 6749 section 3.1: request and response parameters MUST NOT be included
    more than once. A repeated parameter is a :class:`BadRequest` (400), whichever
    value comes first, so no reading of the gate's and another component's can
    differ about which one counts.
    """
    params: dict[str, str] = {}
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise BadRequest("The request has too many parameters.") from None
    for name, value in pairs:
        if name in params:
            shown = f"{name!r} " if name in _NAMED else ""
            raise BadRequest(f"The parameter {shown}appears more than once.")
        params[name] = value
    return params


def is_navigation(req: GateRequest) -> bool:
    """A browser navigation: GET or HEAD that accepts HTML, not fetch/XHR.

    Only a navigation is sent into the sign-in; anything else gets a 401, since
    a redirect to the provider means nothing to a script or to ``fetch``.
    """
    if req.method not in ("GET", "HEAD"):
        return False
    mode = req.headers.get("sec-fetch-mode")
    if mode is not None:
        return mode == "navigate"
    if req.headers.get("x-requested-with"):
        return False
    return req.accepts_html()


class Origin:
    """The site's external origin: ``base_url``, else the request's scheme and ``Host``."""

    def __init__(self, settings: Settings) -> None:
        self._fixed = settings.base_url.rstrip("/") if settings.base_url else None
        self._fallback_host = f"{settings.host}:{settings.port}"

    def of(self, req: GateRequest) -> str:
        if self._fixed is not None:
            return self._fixed
        host = req.headers.get("host", "")
        if not _valid_host(host):
            host = self._fallback_host
        return f"{req.scheme}://{host}"


def _valid_host(host: str) -> bool:
    if not host or len(host) > 255:
        return False
    return all(c.isalnum() or c in ".-:[]_" for c in host)
