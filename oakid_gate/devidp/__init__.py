"""A local OakID-compatible OpenID provider, for development and tests.

OakID is hosted only, so the dev-idp stands in for it on your machine: the
same endpoints, parameters, token behaviour and error responses, with demo
users and an in-memory store.

.. warning::

   This is a test tool. It shows demo passwords on its sign-in page, keeps
   everything in memory, has no rate limits and forgets everything on
   restart. Listen on 127.0.0.1 only; never expose it or put real passwords
   in it.

Running it
==========

From the command line: ``oakid-gate dev-idp``. In process, for tests::

    import httpx
    from oakid_gate.devidp import DevClient, DevIdPConfig, create_app

    config = DevIdPConfig(
        issuer="http://127.0.0.1:9000",
        clients=(DevClient("oak_dev_client", "dev-secret-0123456789"),),
    )
    app = create_app(config)  # a Starlette app; serve it with uvicorn, or:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                               base_url=config.issuer)

``DevIdPConfig`` fields: ``issuer`` (no trailing slash; a path is allowed and
prefixes every route), ``clients``, ``users`` (default :data:`DEMO_USERS`),
``access_token_ttl`` (3600 s, also the ID token lifetime), ``code_ttl``
(120 s), ``log_path`` (optional JSON-lines event log). A bad value raises
``ValueError`` naming it when the config is built. ``create_app`` also takes
a keyword-only ``clock`` (a ``time.time``-like callable) for tests.

A :class:`DevClient` with no ``redirect_uris`` accepts any loopback redirect
URI (``http://127.0.0.1:<port>/...``, ``http://localhost:<port>/...``,
``http://[::1]:<port>/...``, RFC 8252 7.3); with ``redirect_uris`` the
redirect URI must equal one of them exactly. A client secret must be at least
14 bytes: it is the HS256 key of the client's ID tokens.

Demo users (the password is the username; emails are verified):

- ``alice`` (sub ``u-alice``, alice@example.test), groups ``admins``, ``staff``
- ``bob`` (sub ``u-bob``, bob@example.test), group ``staff``
- ``carol`` (sub ``u-carol``, carol@example.test), no groups

Endpoints
=========

All under the issuer, as in OakID:

==================================================  ===========================
``GET /.well-known/openid-configuration``           discovery (also served at
                                                    ``/.well-known/oauth-authorization-server``)
``GET /.well-known/jwks.json``                      ``{"keys": []}``: ID tokens are HS256
``GET|POST /oauth/authorize``                       sign-in and consent pages
``POST /oauth/token``                               ``authorization_code``, ``refresh_token``
``GET|POST /oauth/userinfo``                        ``Authorization: Bearer <access token>``
``POST /oauth/revoke``                              RFC 7009
==================================================  ===========================

Authorization requests
======================

Only ``response_type=code``, with PKCE: ``code_challenge`` and
``code_challenge_method=S256`` are required (``plain`` is refused). ``scope``
defaults to ``openid profile email``; it must contain ``openid`` and nothing
outside those three. ``state`` and ``nonce`` are optional and echoed (``nonce``
in the ID token). ``login_hint`` fills in the username; ``prompt=none`` is
answered with ``error=login_required``, as the dev-idp keeps no sessions.

An unknown ``client_id`` or a redirect URI not allowed for the client gets an
HTML error page (400) and never a redirect. Every other error is a redirect to
the redirect URI with ``error``, ``error_description``, ``state`` and ``iss``
(RFC 6749 4.1.2.1, RFC 9207). A successful sign-in redirects with ``code``,
``state`` and ``iss``. Codes are single use and expire after ``code_ttl``.

In a browser, the sign-in page lists the users. After a correct password, a
consent page lists the requested scopes: *Allow* continues, *Deny* redirects
with ``error=access_denied``. Consent is remembered per (user, client); later
sign-ins skip the page unless they ask for scopes not approved yet. There is
no provider session: every authorization request asks for the password.

Scripted sign-in
================

For tests and scripts, one form POST to the authorization endpoint signs in
and answers directly with the redirect carrying the code: send the authorize
parameters plus ``username``, ``password`` and ``consent=approve`` (which also
remembers the consent)::

    import base64, hashlib, secrets
    import httpx

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    response = httpx.post("http://127.0.0.1:9000/oauth/authorize", data={
        "response_type": "code",
        "client_id": "oak_dev_client",
        "redirect_uri": "http://127.0.0.1:8000/oauth2/callback",
        "scope": "openid profile email",
        "state": "xyz",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "username": "alice",
        "password": "alice",
        "consent": "approve",
    })
    assert response.status_code == 302
    callback = httpx.URL(response.headers["location"])
    code = callback.params["code"]   # with state=xyz and iss=<issuer>

``consent=deny`` redirects with ``error=access_denied``. Without ``consent``
the answer is the consent page (200) unless consent was remembered. Wrong
credentials answer 200 with the sign-in page and a message, never a redirect.
A POST whose ``Origin`` header is neither the issuer's origin nor the one the
request came to is refused with 403 (a guard against cross-site login forms);
scripts send no ``Origin`` and are unaffected.

Tokens
======

``POST /oauth/token`` takes a form body and client authentication by HTTP
Basic (``client_secret_basic``: id and secret form-urlencoded, RFC 6749
2.3.1) or ``client_id`` and ``client_secret`` in the body
(``client_secret_post``), not both. A success is ``access_token``,
``token_type: "Bearer"``, ``expires_in``, ``refresh_token``, ``id_token`` and
``scope``, with ``Cache-Control: no-store``.

- Code exchange: ``code``, ``redirect_uri`` (exactly the authorize one) and
  ``code_verifier`` (43-128 characters; BASE64URL(SHA256(verifier)) must equal
  the challenge, else ``invalid_grant`` "PKCE verification failed"). The first
  exchange attempt by its client uses a code up, whatever the outcome; using
  it again is ``invalid_grant`` and revokes the tokens it produced.
- Refresh: refresh tokens rotate on every use. The presented one is revoked at
  once and the answer holds a new refresh token; sending an old one is
  ``invalid_grant``. An optional ``scope`` may narrow, never widen, the grant.
- The ID token is an HS256 JWT signed with the client secret: ``iss``, ``aud``
  (the client id), ``sub``, ``iat``, ``exp`` (``iat + access_token_ttl``),
  ``auth_time``, ``nonce`` (from the authorization request; absent after a
  refresh, per OIDC Core 12.2) and the user's claims the scopes allow:
  ``profile`` releases ``name``, ``preferred_username``, ``groups`` and the
  other OIDC profile claims, ``email`` releases ``email`` and
  ``email_verified``. ``/oauth/userinfo`` returns the same claims.

Errors are JSON ``{"error": ..., "error_description": ...}``: 400
``invalid_request`` (missing, repeated or malformed parameters), 401
``invalid_client`` (with ``WWW-Authenticate: Basic``), 400 ``invalid_grant``,
400 ``unsupported_grant_type``, 400 ``invalid_scope``, 500 ``server_error``
(internal failure; details go to the ``oakid_gate.devidp.app`` logger only).
``/oauth/userinfo`` answers a missing, unknown, expired or revoked access
token with 401 ``invalid_token`` and ``WWW-Authenticate: Bearer
error="invalid_token"``.

``POST /oauth/revoke`` with ``token`` (``token_type_hint`` is accepted and not
needed) always answers 200, also for unknown tokens (RFC 7009). Client
credentials are optional, but when given they must be right (else 401
``invalid_client``). Revoking an access token ends it alone; revoking a refresh
token ends every access and refresh token from the same sign-in.

Event log
=========

``app.state.events`` is a list of event dicts, also appended as JSON lines to
``log_path`` when set. Every event has ``event``, ``time``, ``ok`` and
``error`` (an OAuth error code or ``None``):

- ``token``: ``grant_type``, ``client_id``, and for refresh grants
  ``refresh_token_sha256`` (SHA-256 hex of the presented refresh token);
- ``authorize``: ``client_id``, ``result`` (``sign_in_page``,
  ``consent_page``, ``code``, ``bad_credentials``, ``error_page``,
  ``error_redirect``, ...) and ``sub`` or ``username`` where known;
- ``userinfo``: ``client_id`` and ``sub`` on success;
- ``revoke``: ``client_id``, ``token_sha256`` and ``revoked``
  (``"access_token"``, ``"refresh_token"`` or ``None``).

The log never holds a raw token, code, password or client secret.

Differences from OakID
======================

No Developer Portal (clients come from the config), no provider session
(every authorization request signs in), no refresh token expiry, nothing
persisted.

Layout
======

The protocol core is sans-I/O (plain values in and out; the clock and
randomness are arguments), one rule to a module:

- ``config.py``: the settings, checked when they are built;
- ``_errors.py``: the error tree, each class with its ``error`` code and status;
- ``_params.py``: parameters (sent once; empty is omitted), digests, comparison;
- ``_request.py``: the authorization request, the redirect URI rules and the
  redirects that answer it; ``_pkce.py``: PKCE; ``_scopes.py``: scopes and the
  claims they release;
- ``_authorize.py``: the authorization endpoint's steps (sign-in, consent,
  code), each returning what to show and the event to log;
- ``_clientauth.py``: client and bearer authentication;
- ``_grants.py``: the ``authorization_code`` and ``refresh_token`` grants;
- ``_idtoken.py``: the ID token; ``_userinfo.py`` and ``_revocation.py``: those
  endpoints; ``_discovery.py``: the provider metadata;
- ``_store.py``: all state, every secret kept under its SHA-256 digest only;
- ``_provider.py``: ``DevProvider``, which holds the store, applies the rules
  above and mints the tokens.

Around it, the I/O: ``app.py`` (``create_app``: routes, clock, randomness),
``_http.py`` (reading requests, shaping responses), ``_events.py`` (the event
log) and ``_pages.py`` (the HTML pages).
"""

from .app import create_app
from .config import DEMO_USERS, DevClient, DevIdPConfig, DevUser

__all__ = ["DEMO_USERS", "DevClient", "DevIdPConfig", "DevUser", "create_app"]
