"""A real OpenID Connect provider for the end-to-end tests: node ``oidc-provider``.

The provider is ``node/provider.mjs`` (``oidc-provider`` 9.13.3, pinned in
``node/package.json``), started on a free loopback port::

    provider = start_oidc_provider(tmp_path, redirect_uris=[f"{gate}/oauth2/callback"])
    provider.issuer                    # "http://127.0.0.1:PORT"
    provider.clients["gate-basic"]     # client_secret_basic, ES256 ID tokens
    provider.clients["gate-post"]      # client_secret_post, RS256 ID tokens
    provider.register_client(redirect_uris=[...], access_token_ttl=2)  # RFC 7591
    provider.events("grant.error")     # what the provider logged, as dicts
    provider.stop()

and a scripted browser for its development sign-in pages::

    with httpx.Client() as http:
        response = sign_in(http, f"{gate}/private", login="alice")

What it does, beyond the defaults of oidc-provider: PKCE (S256) is required for
every client; refresh tokens are issued to every client allowed the
``refresh_token`` grant (not only with ``offline_access``) and rotate on every
use; revocation, introspection, userinfo, RP-initiated logout and open dynamic
registration are on. Any login and password sign in: ``sub`` is the login,
``email`` is ``LOGIN@example.test`` (or the login itself when it contains an
``@``), ``groups`` is ``["staff"]``; ``accounts=`` overrides claims per login.
With the default ``conform_id_token_claims=True`` the ID token of the code flow
carries only ``sub`` and protocol claims: profile, email and groups come from
userinfo.

Its log (``oidc-provider.log`` in the work directory) holds one JSON object per
line for each event, and the provider's own warnings. Token values are never
logged: they appear as :func:`token_fingerprint` values.
"""

from __future__ import annotations

import hashlib
import html.parser
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from peers.process import spawn, terminate

__all__ = [
    "NAVIGATION_HEADERS",
    "NODE_DIR",
    "OIDC_PROVIDER_VERSION",
    "OidcClient",
    "OidcProvider",
    "SignInError",
    "async_sign_in",
    "client_auth",
    "missing_oidc_provider",
    "sign_in",
    "start_oidc_provider",
    "token_fingerprint",
]

NODE_DIR = Path(__file__).resolve().parent / "node"
OIDC_PROVIDER_VERSION = "9.13.3"
_SCRIPT = NODE_DIR / "provider.mjs"

# The clients provider.mjs registers when none are given: (id, auth method, alg).
_DEFAULT_CLIENTS = (
    ("gate-basic", "client_secret_basic", "ES256"),
    ("gate-post", "client_secret_post", "RS256"),
)


def missing_oidc_provider() -> str | None:
    """Say what is missing to run the provider, or None when it can run."""
    if shutil.which("node") is None:
        return "node is not installed"
    installed = NODE_DIR / "node_modules" / "oidc-provider" / "package.json"
    if not installed.is_file():
        return f"oidc-provider is not installed in {NODE_DIR} (run scripts/install-peers.sh)"
    version = json.loads(installed.read_text()).get("version")
    if version != OIDC_PROVIDER_VERSION:
        return (
            f"oidc-provider {version} is installed, {OIDC_PROVIDER_VERSION} is pinned "
            "(run scripts/install-peers.sh)"
        )
    return None


def token_fingerprint(token: str) -> str:
    """The provider log's name for a token: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class OidcClient:
    """A client registered at the provider."""

    client_id: str
    client_secret: str = field(repr=False)
    token_endpoint_auth_method: str
    id_token_signed_response_alg: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...] = ()

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> OidcClient:
        return cls(
            client_id=metadata["client_id"],
            client_secret=metadata.get("client_secret", ""),
            token_endpoint_auth_method=metadata.get(
                "token_endpoint_auth_method", "client_secret_basic"
            ),
            id_token_signed_response_alg=metadata.get("id_token_signed_response_alg", "RS256"),
            redirect_uris=tuple(metadata.get("redirect_uris", ())),
            post_logout_redirect_uris=tuple(metadata.get("post_logout_redirect_uris", ())),
        )


class OidcProvider:
    """A running ``provider.mjs``; start it with :func:`start_oidc_provider`."""

    def __init__(
        self,
        *,
        process: subprocess.Popen[bytes],
        workdir: Path,
        log_path: Path,
        issuer: str,
        port: int,
        clients: Mapping[str, OidcClient],
    ) -> None:
        self.workdir = workdir
        self.log_path = log_path
        self.issuer = issuer
        self.port = port
        self.clients: dict[str, OidcClient] = dict(clients)
        self.metadata: dict[str, Any] = {}
        self._process = process

    def __repr__(self) -> str:
        return f"OidcProvider(issuer={self.issuer!r}, pid={self.pid}, running={self.running})"

    def __enter__(self) -> OidcProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def token_endpoint(self) -> str:
        return str(self.metadata["token_endpoint"])

    def stop(self) -> None:
        """Stop the provider (by its process id) and wait for it to exit."""
        terminate(self._process)

    # -- its log ---------------------------------------------------------------

    def log_lines(self) -> list[str]:
        """Every line the provider wrote, events and warnings alike."""
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def events(self, name: str | None = None, *, since: int = 0) -> list[dict[str, Any]]:
        """The logged events, oldest first, optionally only those called ``name``.

        ``since`` is a value of :meth:`mark`: only events logged after it count.
        Events are written before the HTTP response that caused them is sent,
        so they are there as soon as the client has its answer.
        """
        found = list(_parse_events(self.log_lines()))[since:]
        return found if name is None else [event for event in found if event["event"] == name]

    def mark(self) -> int:
        """A position in the event log, for ``events(since=...)``."""
        return len(list(_parse_events(self.log_lines())))

    # -- clients and tokens ----------------------------------------------------

    def register_client(
        self,
        *,
        redirect_uris: Iterable[str],
        token_endpoint_auth_method: str = "client_secret_basic",
        id_token_signed_response_alg: str = "ES256",
        access_token_ttl: int | None = None,
        post_logout_redirect_uris: Iterable[str] | None = None,
        grant_types: Iterable[str] = ("authorization_code", "refresh_token"),
        **metadata: Any,
    ) -> OidcClient:
        """Register a new client by dynamic registration (RFC 7591) and return it.

        This is how a provider shared by the whole session serves a test whose
        redirect URI (the gate's port) is only known at test time.
        ``access_token_ttl`` (seconds) overrides the provider's default for this
        client's access tokens, e.g. 2 for refresh tests.
        """
        redirect_uris = list(redirect_uris)
        body: dict[str, Any] = {
            "redirect_uris": redirect_uris,
            "post_logout_redirect_uris": list(
                _origins(redirect_uris)
                if post_logout_redirect_uris is None
                else post_logout_redirect_uris
            ),
            "grant_types": list(grant_types),
            "response_types": ["code"],
            "token_endpoint_auth_method": token_endpoint_auth_method,
            "id_token_signed_response_alg": id_token_signed_response_alg,
            **metadata,
        }
        if access_token_ttl is not None:
            body["access_token_ttl"] = access_token_ttl
        response = _post(str(self.metadata["registration_endpoint"]), json=body)
        if response.status_code != 201:
            raise RuntimeError(f"registration failed: {response.status_code} {response.text}")
        client = OidcClient.from_metadata(response.json())
        self.clients[client.client_id] = client
        return client

    def gate_settings(
        self, port: int, *, scopes: str = "openid,profile,email,groups", **client: Any
    ) -> dict[str, str]:
        """Register a client for a gate on ``127.0.0.1:PORT`` (with the options of
        :meth:`register_client`) and return the gate's settings for it."""
        registered = self.register_client(
            redirect_uris=[f"http://127.0.0.1:{port}/oauth2/callback"], **client
        )
        return {
            "issuer": self.issuer,
            "client_id": registered.client_id,
            "client_secret": registered.client_secret,
            "scopes": scopes,
        }

    def token(self, client: OidcClient | str, **form: str) -> httpx.Response:
        """POST ``form`` to the token endpoint, authenticated as ``client`` by its method."""
        if isinstance(client, str):
            client = self.clients[client]
        return _post(self.token_endpoint, **client_auth(client, form))

    def client_request(
        self, client: OidcClient | str, endpoint: str, **form: str
    ) -> httpx.Response:
        """POST ``form`` to the discovery metadata's ``endpoint`` (e.g.
        ``"revocation_endpoint"``), authenticated as ``client``."""
        if isinstance(client, str):
            client = self.clients[client]
        url = str(self.metadata[endpoint])
        return _post(url, **client_auth(client, form))


def _post(url: str, **kwargs: Any) -> httpx.Response:
    # trust_env=False: a proxy set in the environment must not see loopback traffic.
    return httpx.post(url, timeout=10, trust_env=False, **kwargs)


def client_auth(client: OidcClient, form: Mapping[str, str]) -> dict[str, Any]:
    """httpx keyword arguments that send ``form`` authenticated as ``client``."""
    data = dict(form)
    method = client.token_endpoint_auth_method
    if method == "client_secret_basic":
        return {"data": data, "auth": (client.client_id, client.client_secret)}
    if method == "client_secret_post":
        data.update(client_id=client.client_id, client_secret=client.client_secret)
        return {"data": data}
    if method == "none":
        data["client_id"] = client.client_id
        return {"data": data}
    raise ValueError(f"no helper for token_endpoint_auth_method {method!r}")


def start_oidc_provider(
    workdir: Path,
    *,
    redirect_uris: list[str],
    access_token_ttl: int = 3600,
    clients: list[dict[str, Any]] | None = None,
    post_logout_redirect_uris: list[str] | None = None,
    accounts: Mapping[str, Mapping[str, Any]] | None = None,
    conform_id_token_claims: bool = True,
    jwt_resource: str | None = None,
    jwt_ttl: int = 300,
    timeout: float = 20.0,
) -> OidcProvider:
    """Start ``provider.mjs`` on a free loopback port and wait until discovery answers.

    ``redirect_uris`` (and ``post_logout_redirect_uris``, by default each
    redirect URI's origin plus ``/``) are those of the two default clients,
    ``gate-basic`` and ``gate-post``, whose secrets are made here. ``clients``
    replaces the default clients with full oidc-provider client metadata; a
    confidential client without a ``client_secret`` gets one. The port is
    chosen by the provider itself when it binds, so there is no race for it.
    ``jwt_resource``: a resource indicator whose access tokens are RFC 9068 JWTs
    (client credentials enabled with it).
    """
    if (missing := missing_oidc_provider()) is not None:
        raise FileNotFoundError(missing)
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "oidc-provider.log"
    if post_logout_redirect_uris is None:
        post_logout_redirect_uris = list(_origins(redirect_uris))

    config: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "access_token_ttl": access_token_ttl,
        "redirect_uris": redirect_uris,
        "post_logout_redirect_uris": post_logout_redirect_uris,
        "accounts": dict(accounts or {}),
        "conform_id_token_claims": conform_id_token_claims,
        "jwt_resource": jwt_resource,
        "jwt_ttl": jwt_ttl,
    }
    if clients is None:
        secrets_by_id = {
            client_id: secrets.token_urlsafe(24) for client_id, _, _ in _DEFAULT_CLIENTS
        }
        config["client_secrets"] = secrets_by_id
        client_infos = [
            OidcClient(
                client_id=client_id,
                client_secret=secrets_by_id[client_id],
                token_endpoint_auth_method=method,
                id_token_signed_response_alg=alg,
                redirect_uris=tuple(redirect_uris),
                post_logout_redirect_uris=tuple(post_logout_redirect_uris),
            )
            for client_id, method, alg in _DEFAULT_CLIENTS
        ]
    else:
        config["clients"] = [_with_secret(client) for client in clients]
        client_infos = [OidcClient.from_metadata(client) for client in config["clients"]]

    start = log_path.stat().st_size if log_path.exists() else 0
    env = {**os.environ, "OIDC_PEER_CONFIG": json.dumps(config)}
    process = spawn(["node", str(_SCRIPT)], log_path=log_path, env=env, cwd=NODE_DIR)
    try:
        ready = _wait_for_ready(process, log_path, start, timeout)
        provider = OidcProvider(
            process=process,
            workdir=workdir,
            log_path=log_path,
            issuer=ready["issuer"],
            port=ready["port"],
            clients={client.client_id: client for client in client_infos},
        )
        provider.metadata = _fetch_discovery(provider.discovery_url, timeout)
    except BaseException:
        terminate(process)
        raise
    return provider


def _with_secret(client: Mapping[str, Any]) -> dict[str, Any]:
    client = dict(client)
    if client.get("token_endpoint_auth_method") != "none" and "client_secret" not in client:
        client["client_secret"] = secrets.token_urlsafe(24)
    return client


def _origins(uris: Iterable[str]) -> Iterator[str]:
    """Each redirect URI's origin (``/``), and the gate's page for the return from a
    logout at the provider (``/oauth2/signed_out``)."""
    seen: set[str] = set()
    for uri in uris:
        parts = urlsplit(uri)
        origin = f"{parts.scheme}://{parts.netloc}/"
        if origin not in seen:
            seen.add(origin)
            yield origin
            yield origin + "oauth2/signed_out"


def _parse_events(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and "event" in event:
            yield event


def _wait_for_ready(
    process: subprocess.Popen[bytes], log_path: Path, start: int, timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        with open(log_path, "rb") as log:
            log.seek(start)
            lines = log.read().decode(errors="replace").splitlines()
        for event in _parse_events(lines):
            if event["event"] == "ready":
                return event
            if event["event"] == "startup_error":
                raise RuntimeError(f"oidc-provider failed to start: {event.get('message')}")
        if process.poll() is not None:
            raise RuntimeError(
                f"oidc-provider exited with {process.returncode}; see {log_path}:\n"
                + "\n".join(lines[-20:])
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"oidc-provider not ready after {timeout}s; see {log_path}")
        time.sleep(0.02)


def _fetch_discovery(url: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(url, timeout=5, trust_env=False)
            if response.status_code == 200:
                metadata: dict[str, Any] = response.json()
                return metadata
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer 200 after {timeout}s")
        time.sleep(0.02)


# -- a scripted browser for the development sign-in pages ----------------------


class SignInError(AssertionError):
    """The scripted sign-in did not go the way it should have."""


@dataclass
class _Form:
    """A form on one of the provider's pages."""

    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _FormParser(html.parser.HTMLParser):
    """Collects every ``<form>`` with the names and values of its inputs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[_Form] = []
        self._current: _Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = _Form(
                action=attributes.get("action", ""),
                method=attributes.get("method", "get").upper(),
            )
            self.forms.append(self._current)
        elif tag in {"input", "button"} and self._current is not None:
            name = attributes.get("name")
            if name and (tag == "input" or "value" in attributes):
                self._current.fields[name] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def _provider_form(response: httpx.Response) -> _Form | None:
    """The devInteractions form on this page (hidden ``prompt`` = login/consent), if any."""
    if "html" not in response.headers.get("content-type", ""):
        return None
    parser = _FormParser()
    parser.feed(response.text)
    for form in parser.forms:
        if form.fields.get("prompt") in {"login", "consent"}:
            return form
    return None


# What a browser sends on a top-level navigation: a gate tells a browser that
# should be redirected to sign in from an API client that should get a 401.
NAVIGATION_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
}


@dataclass(frozen=True)
class _Step:
    method: str
    url: str
    data: dict[str, str] | None = None


def _sign_in_flow(
    url: str, *, login: str, password: str, stop_at: str | None, max_steps: int
) -> Generator[_Step, httpx.Response, httpx.Response]:
    """The sign-in as steps: yields what to request, receives the response.

    Written once, driven by :func:`sign_in` and :func:`async_sign_in`.
    """
    step = _Step("GET", url)
    history: list[str] = []
    for _ in range(max_steps):
        response = yield step
        history.append(f"{step.method} {step.url} -> {response.status_code}")
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if stop_at is not None and location.startswith(stop_at):
                return response
            step = _Step("GET", location)
            continue
        form = _provider_form(response)
        if form is None:
            if stop_at is not None:
                raise SignInError(
                    f"never redirected to {stop_at}; last response "
                    f"{response.status_code}: {response.text[:500]}\n" + "\n".join(history)
                )
            return response
        data = dict(form.fields)
        if data["prompt"] == "login":
            data.update(login=login, password=password)
        step = _Step(form.method, urljoin(str(response.url), form.action), data)
    raise SignInError(f"no end after {max_steps} requests:\n" + "\n".join(history))


def sign_in(
    client: httpx.Client,
    url: str,
    *,
    login: str,
    password: str = "pw",
    stop_at: str | None = None,
    max_steps: int = 20,
) -> httpx.Response:
    """Sign in as ``login`` through the provider's development pages, like a browser.

    Starts with GET ``url`` (a gate-protected page, the gate's login URL, or a
    raw authorize URL), follows every redirect by hand with ``client``'s
    cookie jar, and fills in the login form and the consent form when they
    come. Every request carries :data:`NAVIGATION_HEADERS`, as a browser's
    navigation does. With ``stop_at``, returns the first redirect whose Location starts
    with it, unfollowed (read ``code``, ``state`` and ``iss`` from it);
    without, returns the first response that is neither a redirect nor a
    provider form.

    The provider remembers the signed-in user in cookies for 127.0.0.1, which
    every port shares, and then asks nothing: use a fresh client (cookie jar)
    for each user.
    """
    flow = _sign_in_flow(url, login=login, password=password, stop_at=stop_at, max_steps=max_steps)
    step = next(flow)
    while True:
        response = client.request(
            step.method,
            step.url,
            data=step.data,
            headers=NAVIGATION_HEADERS,
            follow_redirects=False,
        )
        try:
            step = flow.send(response)
        except StopIteration as done:
            result: httpx.Response = done.value
            return result


async def async_sign_in(
    client: httpx.AsyncClient,
    url: str,
    *,
    login: str,
    password: str = "pw",
    stop_at: str | None = None,
    max_steps: int = 20,
) -> httpx.Response:
    """:func:`sign_in` on an ``httpx.AsyncClient``."""
    flow = _sign_in_flow(url, login=login, password=password, stop_at=stop_at, max_steps=max_steps)
    step = next(flow)
    while True:
        response = await client.request(
            step.method,
            step.url,
            data=step.data,
            headers=NAVIGATION_HEADERS,
            follow_redirects=False,
        )
        try:
            step = flow.send(response)
        except StopIteration as done:
            result: httpx.Response = done.value
            return result


def log_out_at_provider(client: httpx.Client, issuer: str) -> httpx.Response:
    """End ``client``'s session at the provider, as a user on its own logout page does:
    GET ``/session/end``, then its form with ``logout=yes``. The provider then sends its
    back-channel logout tokens; returns the final answer."""
    page = client.get(f"{issuer}/session/end", headers=NAVIGATION_HEADERS)
    parser = _FormParser()
    parser.feed(page.text)
    form = next((f for f in parser.forms if "xsrf" in f.fields), None)
    if form is None:
        raise SignInError(f"no logout form at the provider: {page.status_code} {page.text[:300]}")
    action = str(page.url.join(form.action))
    return client.post(action, data={**form.fields, "logout": "yes"}, headers=NAVIGATION_HEADERS)
