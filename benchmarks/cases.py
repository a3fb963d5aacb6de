"""What is compared: the servers, the variants loaded with wrk, and the cases (ratios).

A *server* is a process (or Apache instance) started on demand by
:class:`Lab`; a *variant* is one URL of one server loaded by wrk, with the
response every request must get; a *case* is a variant against its baseline
variant, with the issue's target for the median of the per-round ratios.
Variants of one *group* run in the same rounds, alternating.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from apache import ApacheSite, OidcSite, start_apache
from apps import BODY
from cpu import pin_tree
from peers.oidc_provider import OidcProvider
from peers.ports import free_port
from peers.process import Running
from peers.redis_server import RedisServer, start_redis
from servers import SERVER_CORE, start_gate, start_uvicorn, start_uvicorn_cli
from signin import USER, apache_sign_in, gate_sign_in, sessions_sign_in
from wrk import Expect

__all__ = ["CASES", "CONTROL", "DIAGNOSTIC_CASES", "GROUPS", "VARIANTS", "Case", "Lab", "Variant"]

HELLO = Expect(200, BODY)
PING = Expect(200, b"OK")
AUTH = Expect(202, b"", {"x-auth-request-user": USER})
#: the control case: a second bare app against the first, which must read 1.00; how far it
#: strays is how much the method itself moves a ratio
CONTROL = "control"


@dataclass(frozen=True)
class Variant:
    """``path`` of ``server`` under load, with the ``Cookie`` of ``cookie_of``'s sign-in."""

    key: str
    label: str
    group: str
    server: str
    path: str = "/"
    cookie_of: str | None = None
    expect: Expect = HELLO
    cpu_of: tuple[str, ...] = ()  # more servers whose CPU counts (a shared store)


@dataclass(frozen=True)
class Case:
    """``variant`` against ``baseline``: the median per-round ratio of req/s, and its target."""

    id: str
    variant: str
    baseline: str
    target: float | None  # None: a reference row, reported only
    like: str | None = None  # reported beside the ratio of this other case

    @property
    def target_label(self) -> str:
        if self.id == CONTROL:
            return "must read 1.00"
        if self.like:
            return f"~ {self.like}"
        return "ref" if self.target is None else f">= {self.target:.2f}"


VARIANTS = {
    v.key: v
    for v in (
        # 1-3: the middleware under uvicorn, against the bare app
        Variant("bare", "uvicorn: bare hello", "middleware", "hello", cookie_of="mw-memory"),
        Variant("bare-twin", "uvicorn: bare hello, a second one", "middleware", "hello-twin", cookie_of="mw-memory"),
        Variant("floor", "uvicorn: cookie -> dict floor", "middleware", "floor", cookie_of="mw-memory"),
        Variant("null", "uvicorn: a pass-through middleware", "middleware", "null", cookie_of="mw-memory"),
        Variant("keys", "uvicorn: the gate's four scope keys only", "middleware", "keys", cookie_of="mw-memory"),
        Variant("keys2", "uvicorn: user and auth only (no resize)", "middleware", "keys2", cookie_of="mw-memory"),
        Variant("sessions", "uvicorn: SessionMiddleware path", "middleware", "sessions", cookie_of="sessions"),
        Variant("mw-memory", "uvicorn: OakIDMiddleware, memory", "middleware", "mw-memory", cookie_of="mw-memory"),
        Variant("mw-sqlite", "uvicorn: OakIDMiddleware, sqlite", "middleware", "mw-sqlite", cookie_of="mw-sqlite"),
        Variant("mw-redis", "uvicorn: OakIDMiddleware, redis", "middleware", "mw-redis", cookie_of="mw-redis", cpu_of=("redis",)),
        # 4: the command, against the user's own `uvicorn app:app`
        Variant("uvicorn-cli", "`uvicorn apps:hello`", "run", "uvicorn-cli", cookie_of="run-gate"),
        Variant("run-gate", "`oakid-gate run apps:hello`", "run", "run-gate", cookie_of="run-gate"),
        # 5-8: the proxy, against Apache in front of the same backend
        Variant("apache-shm", "Apache + mod_auth_openidc (shm)", "proxy", "apache-shm", cookie_of="apache-shm"),
        Variant("proxy-memory", "`oakid-gate proxy`, memory", "proxy", "proxy-memory", cookie_of="proxy-memory"),
        Variant("apache-redis", "Apache + mod_auth_openidc (redis)", "proxy", "apache-redis", cookie_of="apache-redis", cpu_of=("redis",)),
        Variant("proxy-redis", "`oakid-gate proxy`, redis", "proxy", "proxy-redis", cookie_of="proxy-redis", cpu_of=("redis",)),
        Variant("apache-plain", "Apache mod_proxy, no auth (/public)", "proxy", "apache-plain", path="/public"),
        Variant("proxy-public", "`oakid-gate proxy`, public path", "proxy", "proxy-memory", path="/public"),
        Variant("ping", "`oakid-gate proxy` /oauth2/ping", "proxy", "proxy-memory", path="/oauth2/ping", cookie_of="proxy-memory", expect=PING),
        Variant("auth", "`oakid-gate proxy` /oauth2/auth", "proxy", "proxy-memory", path="/oauth2/auth", cookie_of="proxy-memory", expect=AUTH),
    )
}  # fmt: skip

CASES = (
    Case(CONTROL, "bare-twin", "bare", None),
    Case("floor", "floor", "bare", None),
    Case("sessions", "sessions", "bare", None),
    Case("null", "null", "bare", None),
    Case("keys", "keys", "bare", None),
    Case("keys2", "keys2", "bare", None),
    Case("mw-memory", "mw-memory", "bare", 0.90),
    Case("mw-sqlite", "mw-sqlite", "bare", 0.85),
    Case("mw-redis", "mw-redis", "bare", 0.80),
    Case("run", "run-gate", "uvicorn-cli", 0.90),
    Case("proxy-memory", "proxy-memory", "apache-shm", 1.0),
    Case("proxy-redis", "proxy-redis", "apache-redis", 1.0),
    Case("proxy-public", "proxy-public", "apache-plain", 0.90),
    # "must cost what a signed-in middleware request costs": shown beside that ratio
    Case("auth", "auth", "ping", None, like="mw-memory"),
)

#: reference cases that only explain others (what being a middleware, the gate's scope
#: keys, and the resize they cause, cost): run when named (``--cases``), not by default
DIAGNOSTIC_CASES = ("null", "keys", "keys2")
#: the cases measured without wrk (benchmarks/footprint.py, start-up timing)
OTHER_CASES = ("memory", "startup")
GROUPS = ("middleware", "run", "proxy")


@dataclass
class Lab:
    """The running peers and servers of one benchmark run, started on demand."""

    workdir: Path
    provider: OidcProvider
    running: dict[str, Running] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    _redis: RedisServer | None = None

    # -- servers -----------------------------------------------------------------

    def server(self, key: str) -> Running:
        """The server ``key``, started (with what it needs) if it is not running."""
        if key not in self.running:
            start = _STARTERS.get(key)
            if start is None and key.startswith("hello-"):  # another bare app
                start = _another_hello(key)
            if start is None:
                raise KeyError(f"no server {key!r}")
            self.running[key] = start(self)
        return self.running[key]

    def pids(self, keys: tuple[str, ...]) -> list[int]:
        """Process ids of the servers ``keys`` (``redis`` included) that run."""
        pids = [self.running[k].pid for k in keys if k in self.running]
        if "redis" in keys and self._redis is not None and self._redis.pid is not None:
            pids.append(self._redis.pid)
        return pids

    def all_pids(self) -> list[int]:
        """Every process this lab started and that runs on the server core."""
        pids = [r.pid for r in self.running.values()] + [self.provider.pid]
        if self._redis is not None and self._redis.pid is not None:
            pids.append(self._redis.pid)
        return pids

    def redis(self) -> RedisServer:
        if self._redis is None:
            self._redis = start_redis(self.workdir / "redis")
            assert self._redis.pid is not None
            pin_tree(self._redis.pid, {SERVER_CORE})
        return self._redis

    def stop(self, keys: list[str]) -> None:
        """Stop the servers ``keys`` (by process id); the others keep running."""
        for key in keys:
            running = self.running.pop(key, None)
            self.cookies.pop(key, None)
            if running is not None:
                running.stop()

    def close(self) -> None:
        """Stop everything this lab started, the provider last."""
        try:
            self.stop(list(self.running))
            if self._redis is not None:
                self._redis.stop()
        finally:
            self.provider.stop()

    # -- sign-ins ------------------------------------------------------------------

    def cookie(self, key: str) -> str:
        """The ``Cookie`` header value of a real sign-in at server ``key`` (cached)."""
        if key not in self.cookies:
            url = self.server(key).url
            self.cookies[key] = _SIGN_INS[key](url, BODY)
        return self.cookies[key]

    # -- settings ----------------------------------------------------------------

    def gate_settings(self, port: int, **extra: str) -> dict[str, str]:
        """A new client at the provider for a gate on ``port``, as ``OAKID_*`` settings."""
        settings = self.provider.gate_settings(port, scopes="openid,profile,email")
        return {**settings, "secret": secrets.token_urlsafe(32), **extra}

    def apache_site(self, *, oidc: bool, redis: bool = False) -> ApacheSite:
        port = free_port()
        backend = self.server("backend").url
        if not oidc:
            return ApacheSite(port, backend)
        site = ApacheSite(port, backend)
        client = self.provider.register_client(
            redirect_uris=[site.redirect_uri], id_token_signed_response_alg="RS256"
        )
        redis_at = f"127.0.0.1:{self.redis().port}" if redis else None
        oidc_site = OidcSite(self.provider.issuer, client.client_id, client.client_secret, redis_at)
        return ApacheSite(port, backend, oidc_site)


# -- how each server starts ------------------------------------------------------


def _middleware(store: str) -> Callable[[Lab], Running]:
    def start(lab: Lab) -> Running:
        port = free_port()
        settings = lab.gate_settings(port, session_store=_store_url(lab, store))
        return start_uvicorn(
            f"mw-{store}", "apps:gated_app", lab.workdir, port=port, settings=settings
        )

    return start


def _proxy(store: str) -> Callable[[Lab], Running]:
    def start(lab: Lab) -> Running:
        port = free_port()
        settings = lab.gate_settings(
            port,
            session_store=_store_url(lab, store),
            upstream=lab.server("backend").url,
            public_paths="/public",
        )
        return start_gate(f"proxy-{store}", ["proxy"], lab.workdir, port=port, settings=settings)

    return start


def _run_gate(lab: Lab) -> Running:
    port = free_port()
    settings = lab.gate_settings(port)
    return start_gate("run-gate", ["run", "apps:hello"], lab.workdir, port=port, settings=settings)


def _apache(name: str, *, oidc: bool, redis: bool = False) -> Callable[[Lab], Running]:
    def start(lab: Lab) -> Running:
        return start_apache(lab.workdir / name, lab.apache_site(oidc=oidc, redis=redis))

    return start


def _another_hello(key: str) -> Callable[[Lab], Running]:
    def start(lab: Lab) -> Running:
        return start_uvicorn(key, "apps:hello", lab.workdir, factory=False)

    return start


def _store_url(lab: Lab, store: str) -> str:
    if store == "memory":
        return "memory://"
    if store == "sqlite":
        return f"sqlite:///{lab.workdir}/sessions.db"
    return f"redis://127.0.0.1:{lab.redis().port}/1"  # Apache's redis cache uses db 0


_STARTERS: dict[str, Callable[[Lab], Running]] = {
    "hello": lambda lab: start_uvicorn("hello", "apps:hello", lab.workdir, factory=False),
    "floor": lambda lab: start_uvicorn("floor", "apps:floor_app", lab.workdir),
    "null": lambda lab: start_uvicorn("null", "apps:null_app", lab.workdir),
    "keys": lambda lab: start_uvicorn("keys", "apps:keys_app", lab.workdir),
    "keys2": lambda lab: start_uvicorn("keys2", "apps:two_keys_app", lab.workdir),
    "sessions": lambda lab: start_uvicorn("sessions", "apps:sessions_app", lab.workdir),
    "mw-memory": _middleware("memory"),
    "mw-sqlite": _middleware("sqlite"),
    "mw-redis": _middleware("redis"),
    "uvicorn-cli": lambda lab: start_uvicorn_cli("uvicorn-cli", lab.workdir),
    "run-gate": _run_gate,
    "backend": lambda lab: start_uvicorn("backend", "apps:hello", lab.workdir, factory=False),
    "proxy-memory": _proxy("memory"),
    "proxy-redis": _proxy("redis"),
    "apache-plain": _apache("apache-plain", oidc=False),
    "apache-shm": _apache("apache-shm", oidc=True),
    "apache-redis": _apache("apache-redis", oidc=True, redis=True),
}

_SIGN_INS: dict[str, Callable[[str, bytes], str]] = {
    "sessions": sessions_sign_in,
    "mw-memory": gate_sign_in,
    "mw-sqlite": gate_sign_in,
    "mw-redis": gate_sign_in,
    "run-gate": gate_sign_in,
    "proxy-memory": gate_sign_in,
    "proxy-redis": gate_sign_in,
    "apache-shm": apache_sign_in,
    "apache-redis": apache_sign_in,
}
