"""Outbound TLS and proxies (issue 11 item 4): a provider and an upstream on a private CA,
and the provider reached through an outbound HTTPS proxy.

The CA is made by the test (:mod:`support.tls`); the provider is the hostile double
served by uvicorn over TLS on 127.0.0.1; the outbound proxy is a small CONNECT proxy
that records what it tunnels.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from peers.gate import run_to_exit, start_gate
from peers.ports import free_port
from support.hostile_idp import HostileIdP
from support.tls import ThrowawayCA, make_ca

from oakid_gate import OakIDMiddleware
from oakid_gate.errors import ConfigurationError
from oakid_gate.settings import Settings

pytestmark = pytest.mark.e2e

SECRET = "s" * 32


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return make_ca(tmp_path_factory.mktemp("ca"))


@contextlib.contextmanager
def serve_in_thread(app: Any, port: int, **tls: Any) -> Iterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **tls))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def tls_idp(ca: ThrowawayCA) -> Iterator[HostileIdP]:
    """The provider double over https, with a certificate from the throwaway CA."""
    port = free_port()
    idp = HostileIdP(f"https://127.0.0.1:{port}")
    with serve_in_thread(idp.app, port, ssl_certfile=str(ca.server_cert), ssl_keyfile=str(ca.server_key)):
        yield idp


def gate_for(idp: HostileIdP, **settings: Any) -> OakIDMiddleware:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    return OakIDMiddleware(
        app, issuer=idp.issuer, client_id=idp.client_id, client_secret=idp.client_secret,
        secret=SECRET, **settings,
    )


async def navigate(gate: OakIDMiddleware) -> httpx.Response:
    transport = httpx.ASGITransport(app=gate)
    async with httpx.AsyncClient(transport=transport, base_url="http://site.test") as browser:
        response = await browser.get("/private", headers={"accept": "text/html"})
    await gate.aclose()
    return response


async def test_a_provider_on_a_private_ca_fails_clearly_without_ca_file(
    tls_idp: HostileIdP, caplog: pytest.LogCaptureFixture
) -> None:
    """Without ``ca_file`` the provider's certificate is not trusted: the page and the log
    say so and name the setting; nothing passes."""
    response = await navigate(gate_for(tls_idp))
    assert response.status_code in (502, 503)
    assert "ca_file" in response.text and "not trusted" in response.text
    assert "not trusted" in caplog.text


async def test_a_provider_on_a_private_ca_works_with_ca_file(
    tls_idp: HostileIdP, ca: ThrowawayCA
) -> None:
    """With the CA's certificate in ``ca_file``, discovery is fetched over TLS and the
    browser goes to sign in."""
    response = await navigate(gate_for(tls_idp, ca_file=str(ca.ca_cert)))
    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith(tls_idp.issuer + "/authorize?")


def test_check_reaches_a_provider_on_a_private_ca_only_with_ca_file(
    tls_idp: HostileIdP, ca: ThrowawayCA
) -> None:
    base = {"issuer": tls_idp.issuer, "client_id": tls_idp.client_id,
            "client_secret": tls_idp.client_secret, "secret": SECRET}
    refused = run_to_exit("check", **base)
    assert refused.returncode == 1 and "ca_file" in refused.stderr
    trusted = run_to_exit("check", ca_file=str(ca.ca_cert), **base)
    assert trusted.returncode == 0, trusted.stderr
    assert "provider: ok" in trusted.stdout


@pytest.mark.parametrize(
    ("content", "problem"),
    [pytest.param(None, "cannot read", id="missing"), pytest.param("not a certificate", "no PEM", id="not-pem")],
)
def test_a_bad_ca_file_names_the_setting(tmp_path: Path, content: str | None, problem: str) -> None:
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_text(content)
    for name in ("ca_file", "upstream_ca_file"):
        with pytest.raises(ConfigurationError) as info:
            Settings.load(env={}, client_id="c", client_secret="x", secret=SECRET, **{name: str(path)})
        assert info.value.setting == name and problem in str(info.value)


# ---------------------------------------------------------------- the outbound proxy


class ConnectProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 that records the targets it tunnels to."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.port = free_port()
        self._writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            writer.close()
            return
        self.targets.append(target)
        host, _, port = target.rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        self._writers.append(up_writer)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Serve from a thread of its own, with its own event loop."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            server = loop.run_until_complete(
                asyncio.start_server(self.handle, "127.0.0.1", self.port)
            )
            ready.set()
            loop.run_forever()
            # Shut down cleanly: every tunnel closed, every task ended, then the loop.
            server.close()
            for writer in self._writers:
                writer.close()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(server.wait_closed())
            loop.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        assert ready.wait(10)
        try:
            yield
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)


@pytest.mark.parametrize(
    ("trust_env", "no_proxy", "tunnelled"),
    [
        pytest.param(True, "", True, id="trust-env"),
        pytest.param(False, "", False, id="ignored-by-default"),
        pytest.param(True, "127.0.0.1", False, id="no-proxy"),
    ],
)
async def test_the_provider_is_reached_through_https_proxy_with_trust_env(
    tls_idp: HostileIdP, ca: ThrowawayCA, monkeypatch: pytest.MonkeyPatch,
    trust_env: bool, no_proxy: str, tunnelled: bool,
) -> None:
    """``trust_env`` honours ``HTTPS_PROXY`` (and ``NO_PROXY``) for provider requests;
    without it the environment's proxy is never used."""
    proxy = ConnectProxy()
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    with proxy.running():
        response = await navigate(gate_for(tls_idp, ca_file=str(ca.ca_cert), trust_env=trust_env))
    assert response.status_code == 302, response.text
    port = tls_idp.issuer.rsplit(":", 1)[1]
    assert (f"127.0.0.1:{port}" in proxy.targets) is tunnelled


# ---------------------------------------------------------------- the proxy's upstream


@pytest.fixture(scope="module")
def tls_upstream(ca: ThrowawayCA) -> Iterator[str]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"upstream over tls"})

    port = free_port()
    with serve_in_thread(app, port, ssl_certfile=str(ca.server_cert), ssl_keyfile=str(ca.server_key)):
        yield f"https://127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        pytest.param({}, 502, id="untrusted-by-default"),
        pytest.param({"upstream_ca_file": "CA"}, 200, id="upstream-ca-file"),
        pytest.param({"upstream_insecure_skip_verify": "true"}, 200, id="insecure-skip-verify"),
    ],
)
def test_an_upstream_on_a_private_ca(
    tls_upstream: str, ca: ThrowawayCA, tmp_path: Path, extra: dict[str, str], status: int
) -> None:
    """``oakid-gate proxy`` to an https upstream on a private CA: 502 until it is trusted
    by ``upstream_ca_file``, or verification is skipped on purpose (which check warns of)."""
    extra = {k: (str(ca.ca_cert) if v == "CA" else v) for k, v in extra.items()}
    settings = {"upstream": tls_upstream, "public_paths": "/public", "client_id": "c",
                "client_secret": "x", **extra}
    with start_gate(tmp_path, ["proxy"], settings=settings) as gate:
        response = httpx.get(f"{gate.url}/public", headers={"accept": "application/json"}, trust_env=False)
    assert response.status_code == status, response.text
    if status == 200:
        assert response.text == "upstream over tls"
    checked = run_to_exit("check", "--issuer", "http://127.0.0.1:9", secret=SECRET, **settings)
    assert ("upstream_insecure_skip_verify is on" in checked.stderr) is ("upstream_insecure_skip_verify" in extra)
