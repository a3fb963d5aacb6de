"""The route rules every framework helper is tested with (``requires``, ``login_required``):
each rule kind, met and not, and requests that forge an identity.

A case is ``(rules, claims, scopes, allowed)``: the helper's keyword arguments, the
signed-in user's claims, the scopes granted to the session (``None``: the
``scopes`` setting), and whether the route answers (else 403).
"""

from __future__ import annotations

from typing import Any

import pytest

#: a gate that never calls its provider (the tests sign in with oakid_gate.testing)
SETTINGS: dict[str, Any] = {
    "issuer": "http://127.0.0.1:9",
    "client_id": "app",
    "client_secret": "cs",
    "secret": "s" * 32,
    "public_paths": ["/public/*"],
}

ALICE: dict[str, Any] = {"sub": "u-alice", "email": "alice@example.test", "name": "Alice"}

READ = ("openid", "email", "reports:read")

RULE_CASES = [
    pytest.param({}, ALICE, None, True, id="signed-in"),
    pytest.param({"groups": ["admins", "ops"]}, {**ALICE, "groups": ["users", "ops"]}, None, True, id="groups-one-of"),
    pytest.param({"groups": "admins"}, {**ALICE, "groups": "admins"}, None, True, id="groups-one-name-both-sides"),
    pytest.param({"groups": ["admins"]}, {**ALICE, "groups": ["users"]}, None, False, id="groups-not-in"),
    pytest.param({"groups": ["admins"]}, ALICE, None, False, id="groups-claim-missing"),
    pytest.param({"groups": ["admins"]}, {**ALICE, "groups": {"admins": True}}, None, False, id="groups-claim-not-a-list"),
    pytest.param({"groups": ["admins"]}, {**ALICE, "groups": ["Admins"]}, None, False, id="groups-case-matters"),
    pytest.param({"claims": {"department": "eng"}}, {**ALICE, "department": "eng"}, None, True, id="claim-holds"),
    pytest.param({"claims": {"department": "eng"}}, {**ALICE, "department": "sales"}, None, False, id="claim-other-value"),
    pytest.param({"claims": {"department": "eng"}}, ALICE, None, False, id="claim-missing"),
    pytest.param({"claims": ["roles=editor"]}, {**ALICE, "roles": ["viewer", "editor"]}, None, True, id="claim-list-member"),
    pytest.param({"claims": ["roles=editor"]}, {**ALICE, "roles": ["viewer"]}, None, False, id="claim-list-not-member"),
    pytest.param({"claims": {"org.unit": "core"}}, {**ALICE, "org": {"unit": "core"}}, None, True, id="claim-nested"),
    pytest.param({"claims": {"staff": True}}, {**ALICE, "staff": True}, None, True, id="claim-bool"),
    pytest.param({"claims": {"staff": True}}, {**ALICE, "staff": False}, None, False, id="claim-bool-false"),
    pytest.param({"scopes": ["reports:read"]}, ALICE, READ, True, id="scope-granted"),
    pytest.param({"scopes": "reports:read"}, ALICE, ("openid", "email"), False, id="scope-not-granted"),
    pytest.param(
        {"groups": ["admins"], "claims": {"department": "eng"}, "scopes": ["reports:read"]},
        {**ALICE, "groups": ["admins"], "department": "eng"}, READ, True, id="all-kinds-hold",
    ),
    pytest.param(
        {"groups": ["admins"], "claims": {"department": "eng"}, "scopes": ["reports:read"]},
        {**ALICE, "groups": ["admins"], "department": "eng"}, ("openid",), False, id="one-kind-fails",
    ),
]  # fmt: skip

#: identity headers a client may send to pass as someone else (the gate removes them all)
FORGED = {
    "X-Forwarded-User": "admin",
    "X-Forwarded-Groups": "admins",
    "X-Forwarded-Email": "admin@example.test",
    "X-Auth-Request-Groups": "admins",
    "Remote-User": "admin",
}

JSON = {"accept": "application/json"}
BROWSER = {"accept": "text/html,application/xhtml+xml", "sec-fetch-mode": "navigate"}
