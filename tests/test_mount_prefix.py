"""Public paths are judged on the path the app routes on, under the configured mount prefix.

Issue 9 item 1: a server that lets a client move the split between the mount
prefix and the app's path (``SCRIPT_NAME`` / ``PATH_INFO``, ASGI ``root_path``
/ ``path``) turned ``/public/admin`` into the app's ``/admin``, anonymously,
when the gate judged the full path. Each attack runs against the real server
that allows it, started by the test.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from peers.gate import TESTS, environment
from peers.ports import free_port, wait_for_port
from peers.process import Running, spawn, terminate

SETTINGS = {
    "client_id": "c",
    "client_secret": "cs",
    "secret": "s" * 32,
    "issuer": "http://127.0.0.1:9",
    "public_paths": "/public/*",
}
API = {"accept": "application/json"}
ADMIN = "the admin page, for signed-in users only"  # apps.mounted.ADMIN


def start(workdir: Path, name: str, argv: list[str], port: int, **settings: str) -> Running:
    env = environment({**SETTINGS, **settings})
    env["PYTHONPATH"] = str(TESTS)
    log_path = workdir / f"{name}.log"
    process = spawn(argv, log_path=log_path, env=env, cwd=TESTS)
    try:
        wait_for_port(port, process=process)
    except BaseException:
        terminate(process)
        raise
    return Running(process, port, log_path)


def _gunicorn(port: int) -> list[str]:
    # forwarded_allow_ips='*' (as in many containers): forwarders' SCRIPT_NAME is believed
    return [sys.executable, "-m", "gunicorn", "--forwarded-allow-ips=*",
            "-b", f"127.0.0.1:{port}", "apps.mounted:wsgi"]


def _daphne(port: int) -> list[str]:
    # Daphne takes root_path from a Daphne-Root-Path header, from anyone
    return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "apps.mounted:asgi"]


SERVERS = {"gunicorn": _gunicorn, "daphne": _daphne}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Running]]:
    name = request.param
    port = free_port()
    running = start(tmp_path_factory.mktemp(name), name, SERVERS[name](port), port)
    try:
        yield name, running
    finally:
        running.stop()


ATTACKS = {
    "gunicorn": {"SCRIPT_NAME": "/public"},
    "daphne": {"Daphne-Root-Path": "/public"},
}


def test_a_moved_mount_prefix_does_not_make_a_protected_page_public(server: tuple[str, Running]) -> None:
    """``/public/admin`` with the split moved to ``/public`` + ``/admin`` is the app's
    ``/admin``: it needs a session (401), whatever the server let the client say."""
    name, running = server
    with httpx.Client(base_url=running.url, headers=API, trust_env=False) as http:
        attack = http.get("/public/admin", headers=ATTACKS[name])
        plain = http.get("/admin")
        public = http.get("/public/page")
    assert attack.status_code == 401, attack.text
    assert ADMIN not in attack.text
    assert plain.status_code == 401
    assert (public.status_code, public.text) == (200, "a public page")


def test_proxy_fix_outside_the_gate_cannot_make_a_protected_page_public() -> None:
    """werkzeug's ``ProxyFix(x_prefix=1)`` placed outside the gate takes the prefix from
    ``X-Forwarded-Prefix``: ``/admin`` with a prefix of ``/public`` still needs a session."""
    import os

    from werkzeug.test import Client

    saved = {k: os.environ.get(k) for k in (f"OAKID_{n.upper()}" for n in SETTINGS)}
    os.environ.update({f"OAKID_{n.upper()}": v for n, v in SETTINGS.items()})
    try:
        import importlib

        import apps.mounted

        mounted = importlib.reload(apps.mounted)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    client = Client(mounted.proxy_fix_outside)
    attack = client.get("/admin", headers={"X-Forwarded-Prefix": "/public", **API})
    assert attack.status_code == 401
    assert ADMIN not in attack.get_data(as_text=True)
    public = client.get("/public/page", headers=API)
    assert public.status_code == 200


def test_the_configured_mount_prefix_keeps_public_paths_public(tmp_path: Path) -> None:
    """With ``root_path`` set to where the server mounts the app (uvicorn ``--root-path``),
    public paths under it pass and the rest needs a session."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--root-path", "/app", "--port", str(port),
            "apps.mounted:asgi"]
    with start(tmp_path, "uvicorn", argv, port, root_path="/app") as running, httpx.Client(
        base_url=running.url, headers=API, trust_env=False
    ) as http:
        assert (http.get("/public/page").status_code, http.get("/public/page").text) == (
            200, "a public page"
        )
        assert http.get("/admin").status_code == 401
