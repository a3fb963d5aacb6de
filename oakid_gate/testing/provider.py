"""A fake provider in process: the whole sign-in flow in tests, with no network.

::

    from starlette.testclient import TestClient
    from oakid_gate import OakIDMiddleware
    from oakid_gate.testing import FakeProvider

    provider = FakeProvider()                      # the dev-idp, users alice, bob, carol
    app = OakIDMiddleware(my_app, **provider.settings(), http=provider.async_client())
    with TestClient(app) as client:
        page = provider.sign_in(client, "alice")   # start, authorize, callback, back to "/"
        assert page.status_code == 200

:class:`FakeProvider` is the in-repo dev-idp (:mod:`oakid_gate.devidp`: code
flow with PKCE, HS256 ID tokens, userinfo, refresh, revocation) served in
process. The gate reaches it through the provider client given as ``http=``
(:meth:`~FakeProvider.async_client` for :class:`~oakid_gate.asgi.OakIDMiddleware`,
:meth:`~FakeProvider.sync_client` for :class:`~oakid_gate.wsgi.OakIDWSGIMiddleware`),
or :meth:`~FakeProvider.connect` puts the right one on a gate already built
(``OakID(app, **provider.settings())`` in Flask). Its issuer,
``http://127.0.0.1:9``, is never contacted: nothing leaves the process.

:meth:`~FakeProvider.sign_in` (:meth:`~FakeProvider.asign_in` for an
``httpx.AsyncClient``) plays the browser: ``GET {prefix}/start?rd=path`` on
the app, the authorization request answered in process as the chosen user
(password and consent given, as the dev-idp's scripted sign-in), the callback
on the app (the real code exchange, PKCE, ID token and userinfo checks), then
the redirect back to ``path``, whose response it returns. A sign-in the gate
refuses (an allow-list) returns the gate's 403 page instead. The test client
keeps the session cookie, like a browser.

Users are the dev-idp's :data:`~oakid_gate.devidp.DEMO_USERS` unless ``users``
are given, as :class:`~oakid_gate.devidp.DevUser` or as claims (the username
and password are then ``preferred_username``, else ``sub``). The provider
accepts the redirect URIs of the usual test hosts (``testserver``,
``localhost``, ``127.0.0.1``, http and https, under ``/oauth2``); pass
``redirect_uris`` for others. ``provider.events`` is the dev-idp's event log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from ..adapter import GateAdapter
from ..devidp import DEMO_USERS, DevClient, DevIdPConfig, DevUser, create_app
from ..wsgi import OakIDWSGIMiddleware
from .flow import Flow, run_async, run_sync, sign_in_flow
from .gates import find_gate
from .settings import FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, FAKE_ISSUER, offline_settings

__all__ = ["DEFAULT_REDIRECT_URIS", "FakeProvider", "SyncASGITransport"]

#: the redirect URIs the fake provider accepts unless told otherwise
DEFAULT_REDIRECT_URIS: tuple[str, ...] = tuple(
    f"{scheme}://{host}/oauth2/callback"
    for scheme in ("http", "https")
    for host in ("testserver", "localhost", "127.0.0.1")
)


class FakeProvider:
    """The dev-idp in process, with one client registered for the gate under test."""

    def __init__(
        self,
        users: Iterable[DevUser | Mapping[str, Any]] = DEMO_USERS,
        *,
        issuer: str = FAKE_ISSUER,
        client_id: str = FAKE_CLIENT_ID,
        client_secret: str = FAKE_CLIENT_SECRET,
        redirect_uris: Iterable[str] = DEFAULT_REDIRECT_URIS,
    ) -> None:
        client = DevClient(client_id, client_secret, tuple(redirect_uris))
        self.config = DevIdPConfig(issuer, (client,), users=tuple(_dev_user(u) for u in users))
        #: the dev-idp's ASGI app
        self.app = create_app(self.config)

    @property
    def issuer(self) -> str:
        return self.config.issuer

    @property
    def events(self) -> list[dict[str, Any]]:
        """The dev-idp's event log (``authorize``, ``token``, ``userinfo``, ``revoke``)."""
        events: list[dict[str, Any]] = self.app.state.events
        return events

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """Gate settings for this provider (issuer, client, a fresh ``secret``), updated
        with ``overrides``."""
        client = self.config.clients[0]
        return offline_settings(
            issuer=self.issuer,
            client_id=client.client_id,
            client_secret=client.client_secret,
            **overrides,
        )

    def async_client(self) -> httpx.AsyncClient:
        """A provider client for :class:`~oakid_gate.asgi.OakIDMiddleware` (``http=``)."""
        transport = httpx.ASGITransport(app=self.app)
        return httpx.AsyncClient(transport=transport, follow_redirects=False)

    def sync_client(self) -> httpx.Client:
        """A provider client for :class:`~oakid_gate.wsgi.OakIDWSGIMiddleware` (``http=``)."""
        return httpx.Client(transport=SyncASGITransport(self.app), follow_redirects=False)

    def connect(self, target: object) -> GateAdapter[Any, Any]:
        """Point the gate serving ``target`` (a client, an app or the gate) at this
        provider; return the gate. Its settings must come from :meth:`settings`."""
        gate = find_gate(target)
        if gate.settings.issuer != self.issuer:
            raise ValueError(
                f"the gate's issuer is {gate.settings.issuer!r}, not the fake provider's "
                f"{self.issuer!r}: build the gate with provider.settings()"
            )
        if isinstance(gate, OakIDWSGIMiddleware):
            gate.use_http(self.sync_client())
        else:
            gate.use_http(self.async_client())
        return gate

    def sign_in(
        self,
        client: Any,
        username: str = "alice",
        *,
        path: str = "/",
        password: str | None = None,
        gate: GateAdapter[Any, Any] | None = None,
    ) -> Any:
        """Sign ``client`` (Starlette's ``TestClient``, an ``httpx.Client``, Flask's
        test client) in as ``username`` through the whole flow; return the response
        it lands on (``path``, or the gate's refusal)."""
        flow = self._flow(client, username, path, password, gate)
        with self.sync_client() as provider:
            return run_sync(flow, client, provider)

    async def asign_in(
        self,
        client: httpx.AsyncClient,
        username: str = "alice",
        *,
        path: str = "/",
        password: str | None = None,
        gate: GateAdapter[Any, Any] | None = None,
    ) -> httpx.Response:
        """:meth:`sign_in` for an ``httpx.AsyncClient``."""
        flow = self._flow(client, username, path, password, gate)
        async with self.async_client() as provider:
            response: httpx.Response = await run_async(flow, client, provider)
            return response

    def _flow(
        self,
        client: object,
        username: str,
        path: str,
        password: str | None,
        gate: GateAdapter[Any, Any] | None,
    ) -> Flow:
        found = gate if gate is not None else find_gate(client)
        user = next((u for u in self.config.users if u.username == username), None)
        if user is None:
            known = ", ".join(u.username for u in self.config.users)
            raise ValueError(f"the fake provider has no user {username!r} (it has: {known})")
        secret = password if password is not None else user.password
        return sign_in_flow(found.settings.prefix, self.issuer, username, secret, path)


def _dev_user(user: DevUser | Mapping[str, Any]) -> DevUser:
    if isinstance(user, DevUser):
        return user
    name = str(user.get("preferred_username") or user.get("sub") or "")
    return DevUser(username=name, password=name, claims=dict(user))


class SyncASGITransport(httpx.BaseTransport):
    """An ``httpx.Client`` transport that calls an ASGI app in process: each request
    runs on a fresh event loop in a helper thread (so a caller inside a running
    loop, such as an async test calling a WSGI app, is no trouble)."""

    def __init__(self, app: Any) -> None:
        self._asgi = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="oakid-fake-idp") as pool:
            return pool.submit(asyncio.run, self._send(request)).result()

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self._asgi.handle_async_request(request)
        body = await response.aread()
        return httpx.Response(response.status_code, headers=response.headers, content=body)
