"""The project's own processes for a test, and the scripted sign-in at the dev-idp.

``oakid-gate run``, ``proxy``, ``dev-idp`` and ``demo`` each run as a process of
their own on a free loopback port, with every setting in an ``OAKID_*``
environment variable (never on the command line, where any user of the machine
could read a secret), logged to a file in the test's work directory, waited for
until they answer HTTP, and stopped by their process id::

    with start_dev_idp(workdir) as idp:
        settings = idp.settings(upstream=upstream.url)
        with start_gate(workdir, ["proxy"], settings=settings) as gate, httpx.Client() as http:
            page = dev_idp_sign_in(http, f"{gate.url}/private", "bob")
            idp.events("token")  # what the dev-idp logged, as dicts

:func:`run_to_exit` runs a command that stops by itself (``check``, a refusal
to start); :func:`environment` and :func:`wait_until_answers` serve other
programs configured the same way (the examples). :data:`NAVIGATION_HEADERS`
(defined in :mod:`peers.oidc_provider`) are what a browser sends on a top-level
navigation.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from peers.oidc_provider import NAVIGATION_HEADERS
from peers.ports import free_port
from peers.process import Running, spawn, terminate

__all__ = [
    "NAVIGATION_HEADERS",
    "OAKID_GATE",
    "TESTS",
    "Demo",
    "DevIdP",
    "GateProcess",
    "dev_idp_sign_in",
    "environment",
    "run_to_exit",
    "start_demo",
    "start_dev_idp",
    "start_gate",
    "wait_until_answers",
]

TESTS = Path(__file__).resolve().parent.parent
OAKID_GATE = str(Path(sys.executable).with_name("oakid-gate"))
CLAIMS_APP = "apps.claims_app:app"
PING = "/oauth2/ping"
DISCOVERY = "/.well-known/openid-configuration"


def environment(settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without its ``OAKID_*`` variables (a developer's own
    settings must not leak into a test), plus ``settings`` as ``OAKID_<NAME>``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAKID_")}
    env.update({f"OAKID_{k.upper()}": v for k, v in (settings or {}).items()})
    return env


def run_to_exit(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """``oakid-gate ARGS`` expected to stop by itself (``check``, or a refusal to start),
    with ``settings`` as ``OAKID_*`` variables; its output is captured as text."""
    env = environment({"port": str(free_port()), **settings})
    env["PYTHONPATH"] = str(TESTS)  # for run's apps.*
    return subprocess.run(
        [OAKID_GATE, *args],
        env=env,
        cwd=TESTS,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def wait_until_answers(
    url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 20.0
) -> None:
    """Block until ``url`` answers below 500; fail with the log's end if ``process``
    exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited:\n{_tail(log_path)}")
        try:
            if httpx.get(url, timeout=1, trust_env=False).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer in {timeout} s:\n{_tail(log_path)}")
        time.sleep(0.05)


def _tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-3000:] if log_path.exists() else "(no log)"


@dataclass
class GateProcess(Running):
    """A running ``oakid-gate`` command."""


@dataclass
class DevIdP(GateProcess):
    """``oakid-gate dev-idp`` with one client, logging its events as JSON lines."""

    client_id: str
    client_secret: str
    events_path: Path

    def settings(self, **extra: str) -> dict[str, str]:
        """The gate's settings to use this provider, and ``extra``."""
        return {
            "issuer": self.url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            **extra,
        }

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """What the dev-idp logged so far (only events called ``name``, if given)."""
        text = self.events_path.read_text() if self.events_path.exists() else ""
        events = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [e for e in events if name is None or e.get("event") == name]


@dataclass
class Demo(GateProcess):
    """``oakid-gate demo``: the demo app behind the gate, and its dev-idp on ``idp_port``."""

    idp_port: int

    @property
    def idp_url(self) -> str:
        return f"http://127.0.0.1:{self.idp_port}"


def _start(
    workdir: Path, args: Sequence[str], *, settings: Mapping[str, str], port: int, ready: str
) -> tuple[subprocess.Popen[bytes], int, Path]:
    """``oakid-gate ARGS`` on ``port`` with ``settings`` as ``OAKID_*`` variables; waits
    until the path ``ready`` answers there."""
    # Every gate the tests start logs JSON lines (tests/test_logs.py reads them all).
    env = environment({"log_format": "json", **settings, "host": "127.0.0.1", "port": str(port)})
    env["PYTHONPATH"] = str(TESTS)  # for run's apps.*
    # stderr (the log) and stdout (a banner, the access log) apart, as a log shipper sees them
    log_path = workdir / f"{args[0]}-{port}.log"
    out_path = workdir / f"{args[0]}-{port}.out"
    process = spawn(
        [OAKID_GATE, *args], log_path=log_path, env=env, cwd=TESTS, stdout_path=out_path
    )
    try:
        wait_until_answers(f"http://127.0.0.1:{port}{ready}", process, log_path)
    except BaseException:
        terminate(process)
        raise
    return process, port, log_path


def start_gate(
    workdir: Path,
    command: Sequence[str] = ("run", CLAIMS_APP),
    *,
    settings: Mapping[str, str],
    port: int | None = None,
) -> GateProcess:
    """``oakid-gate COMMAND...`` (``run APP`` or ``proxy``, with their options), serving on
    ``port`` or a free one; ``settings`` get a random ``secret`` unless they have one."""
    settings = {"secret": secrets.token_urlsafe(32), **settings}
    started = _start(workdir, command, settings=settings, port=port or free_port(), ready=PING)
    return GateProcess(*started)


def start_dev_idp(
    workdir: Path,
    *,
    client_id: str = "oak_gate_tests",
    client_secret: str | None = None,
    access_token_ttl: int = 3600,
) -> DevIdP:
    """``oakid-gate dev-idp`` with one client (any loopback redirect URI), whose secret is
    random unless given."""
    port = free_port()
    client_secret = client_secret or secrets.token_urlsafe(32)
    events_path = workdir / f"dev-idp-{port}.events"
    options = ["--access-token-ttl", str(access_token_ttl), "--log-file", str(events_path)]
    settings = {"client_id": client_id, "client_secret": client_secret}
    started = _start(workdir, ["dev-idp", *options], settings=settings, port=port, ready=DISCOVERY)
    return DevIdP(*started, client_id, client_secret, events_path)


def start_demo(workdir: Path) -> Demo:
    """``oakid-gate demo`` on a free port, its dev-idp on another; waits for both."""
    idp_port = free_port()
    args = ["demo", "--idp-port", str(idp_port)]
    demo = Demo(*_start(workdir, args, settings={}, port=free_port(), ready=PING), idp_port)
    try:
        wait_until_answers(f"{demo.idp_url}{DISCOVERY}", demo.process, demo.log_path)
    except BaseException:
        demo.stop()
        raise
    return demo


def dev_idp_sign_in(
    http: httpx.Client, url: str, username: str = "alice", *, provider: str | None = None
) -> httpx.Response:
    """Open ``url`` as a browser would and sign in at the dev-idp as ``username``.

    GET ``url`` (302 to the provider, possibly through the gate's /start), one
    POST of the authorize parameters with the credentials and consent (302 to
    the callback), the callback (302 back), and the final GET, whose response
    is returned. Redirects are followed by hand, each checked; the authorize
    request must carry PKCE (S256), a nonce and a state, and be at ``provider``
    when given. Every GET carries :data:`NAVIGATION_HEADERS`.
    """
    response = http.get(url, headers=NAVIGATION_HEADERS)
    steps = 0
    while response.is_redirect and "/oauth/authorize" not in response.headers["location"]:
        response = http.get(
            response.url.join(response.headers["location"]), headers=NAVIGATION_HEADERS
        )
        steps += 1
        assert steps < 5, "never redirected to the provider"
    assert response.is_redirect, f"{response.status_code}: {response.text[:300]}"
    authorize = response.url.join(response.headers["location"])
    endpoint = authorize.copy_with(query=None)
    if provider is not None:
        assert str(endpoint) == f"{provider}/oauth/authorize", authorize
    params = dict(authorize.params)
    assert params.get("code_challenge_method") == "S256", params
    assert params.get("nonce") and params.get("state"), params
    form = {**params, "username": username, "password": username, "consent": "approve"}
    approved = http.post(endpoint, data=form)
    assert approved.status_code == 302, approved.text[:500]
    callback = http.get(approved.headers["location"], headers=NAVIGATION_HEADERS)
    assert callback.is_redirect, f"{callback.status_code}: {callback.text[:500]}"
    return http.get(callback.url.join(callback.headers["location"]), headers=NAVIGATION_HEADERS)
