"""The sans-I/O core of oakid-gate: every decision, written once for ASGI and WSGI.

Nothing in this package does I/O: no sockets, no event loop, no clock, no
randomness, no store and no HTTP client. Decisions are plain functions and
classes over values; exchanges are generators (*programs*) that yield effects
(:mod:`.effects`) and receive their results, driven by :mod:`oakid_gate.drivers`.
A layering contract (``make lint``, import-linter) keeps it that way.

The map
=======

==================  ==========================================================
module              holds
==================  ==========================================================
:mod:`.gate`        :class:`Gate`: the parts composed; what adapters call
:mod:`.request`     :class:`GateRequest`; what kind of request it is; the origin
:mod:`.replies`     :class:`Forward` / :class:`Reply`; every error and JSON answer
:mod:`.pages`       the HTML pages (escaped, no secrets)
:mod:`.effects`     the effect values and typed helpers that yield them
:mod:`.store`       :class:`SessionStore`: the contract the stores implement
:mod:`.records`     :class:`Session`, :class:`PendingLogin`, :func:`hash_key`
:mod:`.lifecycle`   when a session passes, is touched, refreshed or over
:mod:`.sessions`    the current session; single-flight refresh; claims re-read
:mod:`.signin`      the authorization URL; the callback, step by step
:mod:`.signout`     sign-out and its CSRF defence
:mod:`.endpoints`   the gate's own endpoints under ``prefix``
:mod:`.access`      ``public_paths``; ``allowed_emails`` / ``allowed_domains``
:mod:`.claims`      which claims are kept; userinfo names the same subject
:mod:`.provider`    metadata and key cache; client credentials; revocation
:mod:`.flows`       each exchange with the provider, once (httpx requests)
:mod:`.metadata`    OpenID Discovery and RFC 8414 documents, checked
:mod:`.idtoken`     ID token validation (OpenID Connect Core 3.1.3.7)
:mod:`.cookies`     every cookie name and attribute
:mod:`.identity`    identity headers: which, stripping, building
:mod:`.forwarded`   ``X-Forwarded-Proto`` / ``-Host`` from ``trusted_proxies`` only
:mod:`.redirects`   return targets: same-origin paths only
:mod:`.sealing`     AES-256-GCM under ``secret``: the one sealing construction
:mod:`.pending`     a sign-in under way, sealed into its own cookie
==================  ==========================================================

Security decisions, and where each is made
==========================================

- Sign-in state (``state``, ``nonce``, PKCE S256): fresh per sign-in, sealed
  into a ``__Host-`` cookie of its own (nothing stored), opened once at the
  callback by the browser that started it: :mod:`.signin`, :mod:`.pending`,
  :mod:`.sealing`.
- ID tokens: algorithm allow-list, never ``none``; HMAC keyed only with the
  client secret, asymmetric keys only from the provider's JWKS; every claim
  check of 3.1.3.7: :mod:`.idtoken`, keys from :mod:`.provider`.
- Userinfo must name the ID token's subject: :mod:`.claims`.
- Return targets never leave the site: :mod:`.redirects`.
- Every parameter the gate reads appears once: :mod:`.request`.
- Identity values travel unaltered or not at all; the identity claim is
  required; unverified emails are no identity: :mod:`oakid_gate.user`,
  :mod:`.identity`, :mod:`.signin`.
- A new session id at every sign-in, the old one deleted: :mod:`.signin`.
- Store keys are hashes of the cookie value, so a copy of the store holds no
  usable cookie: :mod:`.records`.
- Cookies are HttpOnly, ``__Host-`` and Secure on https: :mod:`.cookies`.
- Refresh is single flight per session; a superseded refresh token is never
  sent; failures never pass a request anonymously: :mod:`.sessions`,
  :mod:`.lifecycle`.
- Sign-out only from this site (Fetch metadata, ``Origin``, a CSRF token),
  and always signs out here first, whatever the provider's state:
  :mod:`.signout`.
- Public paths match the normalized path only: :mod:`.access`.
- Forwarded headers only from ``trusted_proxies``: :mod:`.forwarded`.
- Only the gate sets identity headers; client-sent ones are removed in every
  spelling: :mod:`.identity`.
- No token, code, cookie or secret in a page, an answer or a log line:
  :mod:`.replies`, :mod:`.pages`.
"""

from __future__ import annotations

from .effects import Program, Random
from .gate import Gate
from .records import PendingLogin, Session, hash_key
from .replies import UNEXPECTED_ERROR, Forward, Outcome, Reply, error_reply
from .request import GATE_HEADERS, GateRequest
from .store import SessionStore

__all__ = [
    "GATE_HEADERS",
    "UNEXPECTED_ERROR",
    "Forward",
    "Gate",
    "GateRequest",
    "Outcome",
    "PendingLogin",
    "Program",
    "Random",
    "Reply",
    "Session",
    "SessionStore",
    "error_reply",
    "hash_key",
]
