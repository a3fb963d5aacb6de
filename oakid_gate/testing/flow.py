"""The browser's part of a sign-in, written once for sync and async test clients.

As in httpx's ``auth_flow``, :func:`sign_in_flow` is a generator that yields
a :class:`Step` (a GET on the app, or a form POST to the provider) and
receives the response; :func:`run_sync` and :func:`run_async` perform the
steps with a test client and a provider client.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

__all__ = ["Flow", "Step", "run_async", "run_sync", "sign_in_flow"]

#: what a browser navigation sends
NAVIGATION = {"accept": "text/html,application/xhtml+xml"}


@dataclass(frozen=True)
class Step:
    """One request: a browser GET on the app, or (``form``) a POST to the provider."""

    url: str
    form: dict[str, str] | None = None


Flow = Generator[Step, Any, Any]


def sign_in_flow(prefix: str, issuer: str, username: str, password: str, path: str) -> Flow:
    """Start a sign-in on the app, answer the provider as ``username``, take the
    callback, and return the response of the page the browser lands on."""
    start = yield Step(f"{prefix}/start?{urlencode({'rd': path})}")
    authorize = _location(start, "the sign-in start")
    if not authorize.startswith(issuer + "/"):
        raise RuntimeError(
            f"the gate sent the sign-in to {urlsplit(authorize).netloc!r}, not to the fake "
            f"provider at {issuer!r}: build the gate with provider.settings()"
        )
    form = dict(parse_qsl(urlsplit(authorize).query))
    form.update(username=username, password=password, consent="approve")
    answer = yield Step(authorize.partition("?")[0], form)
    if answer.status_code != 302:
        raise ValueError(
            f"the fake provider refused the sign-in of {username!r} ({answer.status_code}): "
            "wrong password, or a redirect URI it does not know (pass redirect_uris=)"
        )
    callback = yield Step(_location(answer, "the provider"))
    if not 300 <= callback.status_code < 400:
        return callback  # the gate's refusal (403) or error page
    return (yield Step(_location(callback, "the callback")))


def _location(response: Any, what: str) -> str:
    location = response.headers.get("location")
    if not 300 <= response.status_code < 400 or not location:
        raise RuntimeError(f"{what} answered {response.status_code}, not a redirect")
    return str(location)


def run_sync(flow: Flow, client: Any, provider: Any) -> Any:
    """Run ``flow`` with a sync test client and a sync provider client."""
    response = None
    try:
        while True:
            step = flow.send(response)
            if step.form is None:
                response = client.get(step.url, headers=NAVIGATION, follow_redirects=False)
            else:
                response = provider.post(step.url, data=step.form)
    except StopIteration as done:
        return done.value


async def run_async(flow: Flow, client: Any, provider: Any) -> Any:
    """Run ``flow`` with an ``httpx.AsyncClient`` and an async provider client."""
    response = None
    try:
        while True:
            step = flow.send(response)
            if step.form is None:
                response = await client.get(step.url, headers=NAVIGATION, follow_redirects=False)
            else:
                response = await provider.post(step.url, data=step.form)
    except StopIteration as done:
        return done.value
