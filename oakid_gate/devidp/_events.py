"""The event log: what each endpoint records, and where it goes.

Every event has ``event``, ``time``, ``ok`` and ``error``. Events carry token
digests (SHA-256 hex), never a token, code, password or client secret.
"""

from __future__ import annotations

import json
from typing import Any

from ._authorize import AuthorizeEvent
from ._clientauth import client_credentials
from ._errors import OAuthError
from ._params import Params, first_param, sha256_hex
from ._userinfo import UserInfo

__all__ = [
    "EventLog",
    "authorize_event",
    "claimed_client_id",
    "failure_event",
    "revoke_event",
    "token_event",
    "userinfo_event",
]


class EventLog:
    """Events as a list, and as JSON lines in a file when a path is given."""

    def __init__(self, path: str | None) -> None:
        self.events: list[dict[str, Any]] = []
        self._path = path
        if path is not None:
            with open(path, "a", encoding="utf-8"):
                pass  # fail at start-up, not at the first event, if it cannot be written

    def record(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if self._path is not None:
            with open(self._path, "a", encoding="utf-8") as file:
                file.write(json.dumps(event) + "\n")
                file.flush()


def authorize_event(event: AuthorizeEvent, time: float) -> dict[str, Any]:
    """``authorize``: ``client_id``, ``result`` and ``sub`` or ``username`` where known."""
    return {
        "event": "authorize",
        "time": time,
        "client_id": event.client_id,
        "ok": event.ok,
        "error": event.error,
        "result": event.result,
        **event.extra,
    }


def token_event(
    authorization: str | None, params: Params, error: str | None, time: float
) -> dict[str, Any]:
    """``token``: ``grant_type``, ``client_id`` and the refresh token's digest."""
    grant_type = first_param(params, "grant_type")
    event: dict[str, Any] = {
        "event": "token",
        "time": time,
        "grant_type": grant_type,
        "client_id": claimed_client_id(authorization, params),
        "ok": error is None,
        "error": error,
    }
    if grant_type == "refresh_token":
        presented = first_param(params, "refresh_token")
        event["refresh_token_sha256"] = sha256_hex(presented) if presented else None
    return event


def userinfo_event(info: UserInfo, time: float) -> dict[str, Any]:
    """A successful ``userinfo``: ``client_id`` and ``sub``."""
    return {
        "event": "userinfo",
        "time": time,
        "ok": True,
        "error": None,
        "client_id": info.client_id,
        "sub": info.claims["sub"],
    }


def revoke_event(
    authorization: str | None, params: Params, revoked: str | None, time: float
) -> dict[str, Any]:
    """A successful ``revoke``: ``client_id``, ``token_sha256`` and ``revoked``."""
    return {
        "event": "revoke",
        "time": time,
        "ok": True,
        "error": None,
        "client_id": claimed_client_id(authorization, params),
        "token_sha256": sha256_hex(first_param(params, "token") or ""),
        "revoked": revoked,
    }


def failure_event(name: str, error: str, time: float) -> dict[str, Any]:
    """A failed ``userinfo`` or ``revoke``: only the error."""
    return {"event": name, "time": time, "ok": False, "error": error}


def claimed_client_id(authorization: str | None, params: Params) -> str | None:
    """The client a request says it comes from, for the event log."""
    try:
        credentials = client_credentials(authorization, params)
    except OAuthError:
        return first_param(params, "client_id")
    return credentials.client_id if credentials is not None else None
