"""Single-flight refresh across processes: one refresh per expiry, no refresh token sent twice.

The dev-idp runs as a process of its own with 2-second access tokens (the gate
refreshes 1 second before expiry) and an event log. Four ``oakid-gate run``
processes serve ``apps.claims_app`` with the same secret and the same store:
the "several processes or hosts sharing a store" case. One user signs in once;
then, five times over, 200 requests of that one session, spread over the four
gates, cross the moment the access token must be refreshed.

Every response must be 2xx, and the provider must see exactly one refresh per
round, never the same refresh token twice (OakID, like the dev-idp, revokes a
refresh token at its first use: a second use would be ``invalid_grant`` and
sign the user out). Run on sqlite, then on redis.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from peers.gate import GateProcess, dev_idp_sign_in, start_dev_idp, start_gate

pytestmark = pytest.mark.e2e

CLIENT_ID = "oak_concurrency"
CLIENT_SECRET = secrets.token_urlsafe(32)
GATES = 4
ROUNDS = 5
REQUESTS = 200
CONCURRENCY = 50
#: each burst starts this long before the refresh is due and lasts SPREAD seconds
LEAD, SPREAD = 0.25, 0.6
JSON = {"accept": "application/json"}


class Cluster:
    """The dev-idp and four gate processes sharing one session store: four
    ``oakid-gate run`` processes (as on four hosts), or one ``run --workers 4``."""

    def __init__(self, workdir: Path, store_url: str, topology: str) -> None:
        self.idp = start_dev_idp(
            workdir, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, access_token_ttl=2
        )
        self.gates: list[GateProcess] = []
        settings = self.idp.settings(secret=secrets.token_urlsafe(32), session_store=store_url)
        try:
            if topology == "workers":
                command = ["run", "--workers", str(GATES), "apps.claims_app:app"]
                self.gates.append(start_gate(workdir, command, settings=settings))
            else:
                for _ in range(GATES):
                    self.gates.append(start_gate(workdir, settings=settings))
        except BaseException:
            self.stop()
            raise

    def events(self) -> list[dict[str, Any]]:
        """The dev-idp's event log."""
        return self.idp.events()

    def refreshes(self) -> list[dict[str, Any]]:
        return [e for e in self.idp.events("token") if e.get("grant_type") == "refresh_token"]

    def stop(self) -> None:
        for gate in self.gates:
            gate.stop()
        self.idp.stop()


@pytest.fixture(
    params=[
        pytest.param(("sqlite", "workers"), id="sqlite-4-workers"),
        pytest.param(("redis", "workers"), id="redis-4-workers"),
        pytest.param(("sqlite", "hosts"), id="sqlite-4-processes"),
        pytest.param(("redis", "hosts"), id="redis-4-processes"),
    ]
)
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    store, topology = request.param
    if store == "sqlite":
        url = f"sqlite:///{tmp_path / 'sessions.db'}"
    else:
        url = request.getfixturevalue("redis_url")
    c = Cluster(tmp_path, url, topology)
    try:
        yield c
    finally:
        c.stop()


def sign_in(gate_url: str, idp_url: str) -> str:
    """The scripted sign-in through the dev-idp; returns the session cookie's value."""
    with httpx.Client(timeout=10) as browser:
        page = dev_idp_sign_in(browser, f"{gate_url}/private", provider=idp_url)
        assert page.status_code == 200, page.text
        sid = browser.cookies["oakid_session"]
    assert sid
    return sid


@dataclass(frozen=True)
class Answer:
    """One request of a burst: when it left and came back (seconds after the refresh was
    due), to which gate, and what it got."""

    gate: int
    sent: float
    received: float
    status: int
    body: dict[str, Any]


async def burst(
    client: httpx.AsyncClient, gates: list[str], sid: str, refresh_at: float
) -> list[Answer]:
    """REQUESTS requests of one session, round robin over the gates, evenly spread over
    SPREAD seconds from LEAD before ``refresh_at``, at most CONCURRENCY in flight."""
    limit = asyncio.Semaphore(CONCURRENCY)
    headers = {"cookie": f"oakid_session={sid}", **JSON}

    async def one(i: int) -> Answer:
        await asyncio.sleep(max(0.0, refresh_at - LEAD + SPREAD * i / REQUESTS - time.time()))
        async with limit:
            sent = time.time() - refresh_at
            response = await client.get(f"{gates[i % len(gates)]}/private", headers=headers)
            received = time.time() - refresh_at
        ok = response.headers.get("content-type") == "application/json"
        body = response.json() if ok else {"text": response.text[:200]}
        return Answer(i % len(gates), sent, received, response.status_code, body)

    return await asyncio.gather(*(one(i) for i in range(REQUESTS)))


def summary(answers: list[Answer], refreshes: list[dict[str, Any]], refresh_at: float) -> str:
    """What a failed round looked like: per token or error, when it was seen and where."""
    groups: dict[str, list[Answer]] = {}
    for a in answers:
        label = a.body.get("access_token_sha256", "")[:8] or f"{a.status} {a.body}"
        groups.setdefault(label, []).append(a)
    lines = [
        f"{label}: {len(group)} answers, sent {min(a.sent for a in group):+.3f}.."
        f"{max(a.sent for a in group):+.3f} s, back by {max(a.received for a in group):+.3f} s, "
        f"gates {sorted({a.gate for a in group})}"
        for label, group in groups.items()
    ]
    lines.append("refreshes at " + ", ".join(f"{e['time'] - refresh_at:+.3f} s" for e in refreshes))
    return "\n".join(lines)


async def test_one_refresh_per_expiry_across_gate_processes(cluster: Cluster) -> None:
    """200 concurrent requests of one session across 4 processes, 5 expiries: all 2xx,
    exactly one refresh per expiry, no refresh token sent twice."""
    started = time.monotonic()
    gates = [g.url for g in cluster.gates]
    sid = sign_in(gates[0], cluster.idp.url)
    headers = {"cookie": f"oakid_session={sid}", **JSON}
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    served_by: set[int] = set()
    async with httpx.AsyncClient(timeout=15, limits=limits) as client:
        for round_ in range(1, ROUNDS + 1):
            current = await client.get(f"{gates[round_ % len(gates)]}/private", headers=headers)
            assert current.status_code == 200, current.text
            old_token = current.json()["access_token_sha256"]
            refresh_at = current.json()["expires_at"] - 1.0  # 2 s tokens: refreshed 1 s early
            before = len(cluster.refreshes())

            answers = await burst(client, gates, sid, refresh_at)

            refreshes = cluster.refreshes()[before:]
            why = f"round {round_}:\n" + summary(answers, refreshes, refresh_at)
            assert {a.status for a in answers} == {200}, why
            assert {a.body["sub"] for a in answers} == {"u-alice"}, why
            new_tokens = {a.body["access_token_sha256"] for a in answers} - {old_token}
            # The burst crossed the refresh point: one refresh, whose token was served. (A
            # burst slowed down past the next refresh point, +1 s, crosses two; the checks
            # below prove those refreshes belong to two expiries.)
            assert len(refreshes) >= 1, why
            assert len(new_tokens) == len(refreshes), why
            served_by.update(a.body["pid"] for a in answers)

    assert len(served_by) >= 2, "the bursts never reached more than one gate process"
    refreshes = cluster.refreshes()
    assert len(refreshes) >= ROUNDS
    assert all(e["ok"] for e in refreshes), refreshes
    presented = [e["refresh_token_sha256"] for e in refreshes]
    assert len(set(presented)) == len(presented), "a refresh token was sent twice"
    # One refresh per expiry: each came a refresh interval (1 s) after the one before,
    # never a second one for the same expiry (that would be milliseconds apart).
    gaps = [b["time"] - a["time"] for a, b in itertools.pairwise(refreshes)]
    assert min(gaps) > 0.5, gaps
    failures = [e for e in cluster.events() if e.get("event") == "token" and not e.get("ok")]
    assert failures == []
    assert time.monotonic() - started < 45
