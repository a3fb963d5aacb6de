"""Prometheus metrics (issue 11 item 2).

In process: the counters and timings the core's events feed, through the hostile
provider double. End to end: ``oakid-gate run`` with two worker processes and
``oakid-gate proxy``, each with ``metrics_address``, scraped after a scripted sign-in,
a refresh and a refused request.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from peers.gate import DevIdP, dev_idp_sign_in, start_dev_idp, start_gate
from peers.ports import free_port
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from support.hostile_idp import HostileIdP

from oakid_gate import OakIDMiddleware
from oakid_gate.drivers import timings
from oakid_gate.gate import audit
from oakid_gate.metrics import GateMetrics

SITE = "http://testserver"


@pytest.fixture
def metrics() -> Iterator[GateMetrics]:
    """Fresh metrics, fed while the test runs."""
    fresh = GateMetrics(CollectorRegistry())
    audit.observers.append(fresh.event)
    timings.append(fresh.timing)
    yield fresh
    audit.observers.remove(fresh.event)
    timings.remove(fresh.timing)


def value(metrics: GateMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"app"})


@pytest.fixture
async def gate() -> AsyncIterator[tuple[OakIDMiddleware, HostileIdP]]:
    idp = HostileIdP()
    middleware = OakIDMiddleware(
        _app, issuer=idp.issuer, client_id=idp.client_id, client_secret=idp.client_secret,
        secret="s" * 32, http=idp.http_client(),
    )
    yield middleware, idp
    await middleware.aclose()


async def test_the_core_events_and_timings_are_counted(
    metrics: GateMetrics, gate: tuple[OakIDMiddleware, HostileIdP]
) -> None:
    middleware, idp = gate
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url=SITE, headers={"accept": "text/html"}) as browser:
        start = await browser.get("/private")
        callback = await idp.authorize(start.headers["location"])
        assert (await browser.get(callback)).status_code == 302
        assert (await browser.get("/oauth2/auth?allowed_groups=nobody")).status_code == 403
        forged = await browser.get("/oauth2/callback?code=x&state=y")
        assert forged.status_code == 400
        out = await browser.post("/oauth2/sign_out", headers={"sec-fetch-site": "same-origin"})
        assert out.status_code == 200
    async with httpx.AsyncClient(transport=transport, base_url=SITE) as api:
        token = idp.access_token()
        for _ in range(3):
            assert (await api.get("/x", headers={"authorization": f"Bearer {token}"})).status_code == 200
        assert (await api.get("/x", headers={"authorization": "Bearer nope"})).status_code == 401
    assert value(metrics, "oakid_gate_sign_ins_total", outcome="success", reason="") == 1
    assert value(metrics, "oakid_gate_sign_ins_total", outcome="refused", reason="invalid_request") == 1
    assert value(metrics, "oakid_gate_sign_outs_total", kind="user") == 1
    assert value(metrics, "oakid_gate_authorization_refusals_total") == 1
    assert value(metrics, "oakid_gate_bearer_checks_total", outcome="valid", how="checked") == 1
    assert value(metrics, "oakid_gate_bearer_checks_total", outcome="valid", how="cached") == 2
    assert value(metrics, "oakid_gate_bearer_checks_total", outcome="invalid", how="checked") == 1
    assert value(metrics, "oakid_gate_provider_request_seconds_count", endpoint="token") == 1
    assert value(metrics, "oakid_gate_provider_request_seconds_count", endpoint="introspect") == 2
    assert value(metrics, "oakid_gate_store_seconds_count", operation="PutSession") == 1


async def test_active_sessions_are_counted_where_the_store_can(
    metrics: GateMetrics, gate: tuple[OakIDMiddleware, HostileIdP]
) -> None:
    middleware, idp = gate
    metrics.watch_store(middleware.store)
    assert value(metrics, "oakid_gate_active_sessions") == 0
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url=SITE, headers={"accept": "text/html"}) as browser:
        start = await browser.get("/private")
        assert (await browser.get(await idp.authorize(start.headers["location"]))).status_code == 302
    assert value(metrics, "oakid_gate_active_sessions") == 1


async def test_provider_and_store_failures_are_counted(
    metrics: GateMetrics, gate: tuple[OakIDMiddleware, HostileIdP]
) -> None:
    middleware, idp = gate
    idp.faults.token_status = 500
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url=SITE, headers={"accept": "text/html"}) as browser:
        start = await browser.get("/private")
        callback = await idp.authorize(start.headers["location"])
        assert (await browser.get(callback)).status_code >= 500
    failed = value(metrics, "oakid_gate_sign_ins_total", outcome="failed", reason="temporarily_unavailable")
    assert failed == 1


def test_a_metrics_address_without_the_extra_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from oakid_gate.errors import ConfigurationError
    from oakid_gate.metrics import _client

    real_import = builtins.__import__

    def no_prometheus(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("prometheus_client"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_prometheus)
    with pytest.raises(ConfigurationError) as info:
        _client()
    assert info.value.setting == "metrics_address"


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevIdP]:
    with start_dev_idp(tmp_path_factory.mktemp("metrics-idp"), access_token_ttl=2) as process:
        yield process


def scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://{address}/metrics", trust_env=False, timeout=10).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: dict[Any, float], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


@pytest.mark.e2e
@pytest.mark.parametrize("command", ["run", "proxy"])
def test_the_commands_serve_the_metrics_of_every_worker(
    idp: DevIdP, tmp_path: Path, command: str
) -> None:
    """``run --workers 2`` (sqlite shared) and ``proxy``: after a sign-in, a refresh (2 s
    access tokens) and a refused request, the metrics listener, apart from the public
    one, shows them, summed over the workers."""
    address = f"127.0.0.1:{free_port()}"
    settings = idp.settings(
        metrics_address=address, session_store=f"sqlite:///{tmp_path / 's.db'}", refresh_margin="1",
    )
    args = ["run", "--workers", "2", "apps.claims_app:app"] if command == "run" else ["proxy"]
    if command == "proxy":
        upstream = free_port()
        settings["upstream"] = f"http://127.0.0.1:{upstream}"  # not reached: no request goes on
        settings["public_paths"] = "/none"
    with start_gate(tmp_path, args, settings=settings) as gate, httpx.Client(timeout=30, trust_env=False) as http:
        page = dev_idp_sign_in(http, f"{gate.url}/oauth2/start?rd=/oauth2/userinfo", "alice")
        assert page.status_code == 200, page.text
        time.sleep(1.5)  # the access token is due for a refresh
        assert http.get(f"{gate.url}/oauth2/userinfo").status_code == 200
        assert http.get(f"{gate.url}/oauth2/auth?allowed_groups=nobody").status_code == 403
        assert httpx.get(f"{gate.url}/metrics", trust_env=False).status_code in (302, 401, 404)
        samples = scrape(address)
    assert total(samples, "oakid_gate_sign_ins_total", outcome="success") == 1
    assert total(samples, "oakid_gate_refreshes_total", outcome="success") >= 1
    assert total(samples, "oakid_gate_authorization_refusals_total") == 1
    assert total(samples, "oakid_gate_provider_request_seconds_count", endpoint="token") >= 2
    assert total(samples, "oakid_gate_active_sessions") == 1  # counted in the shared store
