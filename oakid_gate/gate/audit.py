"""Audit events: one log record per sign-in, sign-out, refused sign-in, refresh failure
and authorization refusal, with fixed fields.

Each is an ``INFO`` record of the ``oakid_gate`` logger whose ``oakid`` attribute
holds the fields :data:`~oakid_gate.logs.EVENT_FIELDS` name: ``event``,
``outcome``, ``reason`` (a short code or the rule that refused, never a value of
the request), ``sub``, ``session`` (the first 16 hex digits of the session's
store key: a hash of the app and the cookie, which cannot be turned back into
it), ``client`` (the address) and ``request_id``.
:class:`~oakid_gate.logs.JSONFormatter` writes them as JSON fields,
:class:`~oakid_gate.logs.TextFormatter` as ``key=value``. No token, code,
secret, cookie or ``state`` value is ever a field.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .request import GateRequest

__all__ = ["Observer", "audit", "note", "observers"]

log = logging.getLogger("oakid_gate")

#: who is told of each event, without a log line: ``(event, outcome, reason)`` (the
#: metrics, :mod:`oakid_gate.metrics`); empty unless they are turned on
Observer = Callable[[str, str, "str | None"], None]
observers: list[Observer] = []


def note(event: str, outcome: str, reason: str | None = None) -> None:
    """Tell the observers of an event that is counted, not logged (a bearer check, a
    refresh that worked)."""
    for observer in observers:
        observer(event, outcome, reason)


def audit(
    event: str,
    outcome: str,
    req: GateRequest | None,
    *,
    reason: str | None = None,
    sub: str | None = None,
    session: str | None = None,
) -> None:
    """Log one audit event (see the module's docstring)."""
    fields = {
        "event": event,
        "outcome": outcome,
        "reason": reason,
        "sub": sub,
        "session": session[:16] if session else None,
        "client": req.client if req is not None else None,
        "request_id": req.request_id if req is not None else None,
    }
    words = f"{event.replace('_', '-')} {outcome}" + (f": {reason}" if reason else "")
    log.info("%s", words, extra={"oakid": fields})
    note(event, outcome, reason)
