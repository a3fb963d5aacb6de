"""The gate: every decision about a request, written once for ASGI and WSGI.

:meth:`Gate.handle` takes a :class:`GateRequest` (plain values the adapter read
from the scope or environ), ``now`` and a source of random tokens, and returns a
program (see :mod:`oakid_gate.effects`) whose result is either

- :class:`Forward`: call the app, with this session (or anonymously on a public
  path), or
- :class:`Reply`: answer the client directly (a redirect into the sign-in, the
  callback, an error page, the gate's own endpoints).

The signed-in hot path is one cookie lookup, one store read and a few
comparisons; the provider is not called and nothing is decoded.

Security decisions, in one place:

- sign-ins: fresh ``state``, ``nonce`` and PKCE S256 verifier each, stored
  server side under the hash of ``state`` with the return target, taken once,
  bound to the browser that started them by a cookie of their own;
- cookies are parsed by Starlette's ``cookie_parser`` and written with
  :mod:`http.cookies`: nothing of cookie syntax is re-implemented here;
- a new session id at every sign-in; the old session, if any, is deleted;
- the ID token (:mod:`oakid_gate.idtoken`) and userinfo's ``sub`` are checked
  before a session exists;
- refresh is single flight per session across everything sharing the store;
- sign-out is a POST from our own origin or our own form;
- return targets are same-origin paths only (:mod:`oakid_gate.redirects`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc.jwk import KeySet
from starlette.requests import cookie_parser

from . import flows, pages
from .effects import Program, ReadBody, Sleep, StoreCall
from .errors import (
    AccessDenied,
    AuthenticationError,
    AuthorizationDenied,
    ForbiddenRequest,
    IDTokenError,
    OakIDGateError,
    ProviderError,
    ProviderUnavailable,
    StateError,
    StoreUnavailable,
    TokenEndpointError,
    UserInfoError,
    oauth_error_code,
)
from .idtoken import (
    HMAC_ALGS,
    IDTokenExpectations,
    UnknownSigningKey,
    token_alg,
    validate_id_token,
)
from .metadata import ProviderMetadata
from .redirects import safe_return_to
from .session import PendingLogin, Session, hash_key
from .settings import Settings
from .user import identity_fields

__all__ = ["UNEXPECTED_ERROR", "Forward", "Gate", "GateRequest", "Outcome", "Reply", "error_reply"]

log = logging.getLogger("oakid_gate")

#: the request headers the gate reads; adapters pass only these (lower case)
GATE_HEADERS = frozenset(
    {
        "cookie",
        "accept",
        "authorization",
        "host",
        "origin",
        "sec-fetch-mode",
        "sec-fetch-site",
        "sec-fetch-dest",
        "x-requested-with",
        "x-forwarded-proto",
        "x-forwarded-host",
        "content-type",
    }
)

METADATA_TTL = 3600.0  # seconds between discovery refetches
METADATA_RETRY = 10.0  # at most one refetch this often (failures, unknown kid)
REFRESH_WAIT = 5.0  # how long a request waits for another's refresh
REFRESH_POLL = 0.05


@dataclass(frozen=True, slots=True)
class GateRequest:
    """What the gate needs to know of a request."""

    method: str
    scheme: str
    path: str  # percent-decoded, as in the ASGI scope and PATH_INFO
    query_string: str
    headers: Mapping[str, str]  # lower-case names, only GATE_HEADERS
    cookies: Mapping[str, str]
    client: str | None = None

    @property
    def url_path(self) -> str:
        """The path and query to come back to after signing in."""
        path = quote(self.path, safe="/:@!$&'()*+,;=-._~")
        return path + ("?" + self.query_string if self.query_string else "")


@dataclass(frozen=True, slots=True)
class Forward:
    """Call the app. ``session`` is ``None`` for an anonymous request on a public path."""

    session: Session | None


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer the client directly."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""


Outcome = Forward | Reply

#: what an adapter answers when something unforeseen breaks: no detail, no trace
UNEXPECTED_ERROR = Reply(
    500,
    (("content-type", "text/plain; charset=utf-8"), ("cache-control", "no-store")),
    b"The sign-in gate hit an unexpected error. Try again later.",
)
Random = Callable[[], str]


@dataclass(slots=True)
class ProviderState:
    """Provider metadata and keys, with when they were fetched."""

    metadata: ProviderMetadata
    jwks: KeySet | None
    fetched_at: float
    jwks_at: float


class Gate:
    """The decisions of one gate, configured once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        s = settings
        self.prefix = s.prefix
        self._prefix_slash = s.prefix + "/"
        self._public_exact = frozenset(p for p in s.public_paths if not p.endswith("/*"))
        self._public_prefixes = tuple(p[:-1] for p in s.public_paths if p.endswith("/*"))
        self._allowed_emails = frozenset(e.lower() for e in s.allowed_emails)
        self._allowed_domains = frozenset(d.lower() for d in s.allowed_domains)
        self._restricted = bool(self._allowed_emails or self._allowed_domains)
        self._secrets = tuple(x.reveal().encode() for x in s.secret)
        self._scope = " ".join(s.scopes)
        self._lifetime = float(s.session_lifetime)
        self._touch_interval = min(60.0, s.idle_timeout / 10)
        self._claims_interval = float(s.claims_refresh_interval)
        self.provider: ProviderState | None = None
        self._provider_failed_at = float("-inf")
        secure_default = s.base_url.startswith("https:") if s.base_url else None
        self._secure_setting = s.cookie_secure if s.cookie_secure is not None else secure_default
        self._cookie_names = {False: s.cookie_name, True: "__Host-" + s.cookie_name}
        self._has_proxies = bool(s.trusted_proxies)

    # ------------------------------------------------------------ entry point

    def handle(self, req: GateRequest, now: float, random: Random) -> Program[Outcome]:
        """Decide what to do with one request."""
        if self.is_gate_path(req.path):
            return self._endpoint(req, now, random)
        return self._protected(req, now, random)

    def is_gate_path(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self._prefix_slash)

    def hot_key(self, cookie_header: str | None, scheme: str) -> str | None:
        """The store key of the session cookie, for the hot path; ``None`` means take the full path.

        With ``trusted_proxies`` the scheme depends on forwarded headers, so the
        full path (which reads them) decides instead.
        """
        if not cookie_header or self._has_proxies:
            return None
        secure = self._secure_setting if self._secure_setting is not None else scheme == "https"
        sid = cookie_parser(cookie_header).get(self._cookie_names[secure])
        return hash_key(sid) if sid else None

    def admit(self, session: Session | None, now: float) -> bool:
        """Whether a session just read from the store passes as it is: the hot path.

        True means nothing more is needed (no refresh due, not expired, no idle
        time to record, allowed). False means: run :meth:`handle`, which reads
        the session again and does what is needed. Adapters call this first so
        that a signed-in request costs one store read and no program.
        """
        return (
            session is not None
            and now < session.created_at + self._lifetime
            and now < session.last_seen + self._touch_interval
            and (session.refresh_at is None or now < session.refresh_at)
            and now < session.claims_at + self._claims_interval
            and (not self._restricted or self._allowed(session.claims))
        )

    def _protected(self, req: GateRequest, now: float, random: Random) -> Program[Outcome]:
        try:
            session = yield from self._current_session(req, now, random)
        except StoreUnavailable as exc:
            return self.store_failed(req, exc)
        except ProviderUnavailable as exc:
            return self._error(req, exc, "The identity provider is not answering")
        if session is not None:
            if self._restricted and not self._allowed(session.claims):
                return self._error(
                    req, AccessDenied("your account is not allowed to use this site"), "Not allowed"
                )
            return Forward(session)
        if self.is_public(req.path):
            return Forward(None)
        if self._is_navigation(req):
            return (yield from self._begin_login(req, req.url_path, now, random))
        return self._unauthenticated(req)

    def store_failed(self, req: GateRequest, exc: StoreUnavailable) -> Outcome:
        """The answer when the store fails: a 503, never anonymous, except on public paths."""
        if self.is_public(req.path):
            return Forward(None)  # a public path does not need the store
        return self._error(req, exc, "The session store is not answering")

    def is_public(self, path: str) -> bool:
        """``public_paths`` matching on the normalized path; odd paths are never public."""
        if not (self._public_exact or self._public_prefixes):
            return False
        if "//" in path or "/./" in path or "/../" in path or path.endswith(("/.", "/..")):
            return False
        if posixpath.normpath(path) != path.rstrip("/") and path != "/":
            return False
        return path in self._public_exact or path.startswith(self._public_prefixes)

    # ------------------------------------------------------------ sessions

    def _current_session(
        self, req: GateRequest, now: float, random: Random
    ) -> Program[Session | None]:
        sid = req.cookies.get(self.cookie_name(req))
        if not sid:
            return None
        key = hash_key(sid)
        session: Session | None = yield StoreCall("get_session", (key,))
        if session is None:
            return None
        if self.admit(session, now):
            return session
        s = self.settings
        if (
            now >= session.created_at + s.session_lifetime
            or now >= session.last_seen + s.idle_timeout
        ):
            yield StoreCall("delete_session", (key,))
            return None
        if self._due(session, now):
            session = yield from self._refresh(key, session, now, random)
            if session is None:
                return None
        elif now - session.last_seen >= self._touch_interval:
            session = replace(session, last_seen=now)
            yield StoreCall("put_session", (key, session, self._ttl(session, now)))
        return session

    def _ttl(self, session: Session, now: float) -> float:
        end = min(
            session.created_at + self.settings.session_lifetime, now + self.settings.idle_timeout
        )
        return max(1.0, end - now)

    def _refresh(
        self, key: str, seen: Session, now: float, random: Random
    ) -> Program[Session | None]:
        """Refresh once per session, whoever else is trying at the same time."""
        owner = random()
        lock_ttl = self.settings.http_timeout * 2 + 5
        deadline = now + REFRESH_WAIT
        while True:
            got = yield StoreCall("acquire_lock", (key, owner, lock_ttl))
            if got:
                break
            # Another task, thread, process or host is refreshing: wait for it.
            now = yield Sleep(REFRESH_POLL)
            current: Session | None = yield StoreCall("get_session", (key,))
            if current is None:
                return None
            if current.version != seen.version or not self._due(current, now):
                return current
            if now >= deadline:
                return self._stale_or_fail(current, now)
        try:
            result = yield from self._refresh_locked(key, now)
        except GeneratorExit:
            raise  # the program was closed (a cancelled request): the lock expires by itself
        except BaseException:
            yield StoreCall("release_lock", (key, owner))
            raise
        yield StoreCall("release_lock", (key, owner))
        return result

    def _refresh_locked(self, key: str, now: float) -> Program[Session | None]:
        # Re-read under the lock: someone may have refreshed already, and only
        # the newest refresh token may be sent (a superseded one never is).
        session: Session | None = yield StoreCall("get_session", (key,))
        if session is None:
            return None
        if not self._due(session, now):
            return session
        new = session
        if session.refresh_at is not None and now >= session.refresh_at:
            if session.refresh_token is None:
                # Nothing to refresh with: the session ends with its access token.
                if session.expires_at is None or now >= session.expires_at:
                    yield StoreCall("delete_session", (key,))
                    return None
                new = replace(new, refresh_at=session.expires_at)
            else:
                try:
                    provider = yield from self._provider(now)
                    tokens = yield from flows.refresh_tokens(
                        provider.metadata,
                        self._client(provider.metadata),
                        refresh_token=session.refresh_token,
                        scopes=" ".join(session.scopes) or self._scope,
                    )
                except TokenEndpointError as exc:
                    log.info("refresh refused by the provider (%s); session ended", exc.error)
                    yield StoreCall("delete_session", (key,))
                    return None
                except ProviderError:
                    return self._stale_or_fail(session, now)
                expires_at, refresh_at = self._expiry(tokens.expires_in, now)
                new = replace(
                    new,
                    access_token=tokens.access_token,
                    # Rotation: keep the new refresh token; the old only if none came.
                    refresh_token=tokens.refresh_token or session.refresh_token,
                    expires_at=expires_at,
                    refresh_at=refresh_at,
                    scopes=tuple(tokens.scope.split()) if tokens.scope else session.scopes,
                )
        if now >= new.claims_at + self._claims_interval:
            try:
                provider = yield from self._provider(now)
                info = yield from flows.fetch_userinfo(provider.metadata, new.access_token)
                if info:
                    self._check_same_subject(new.claims, info)
                    new = replace(new, claims={**new.claims, **info})
            except UserInfoError as exc:
                # The provider no longer honours the token, or names someone else.
                log.info("userinfo re-read failed (%s); session ended", exc.message)
                yield StoreCall("delete_session", (key,))
                return None
            except ProviderError as exc:
                log.warning("userinfo re-read failed, claims kept: %s", exc.message)
            new = replace(new, claims_at=now)  # next attempt after a full interval
        new = replace(new, last_seen=now, version=session.version + 1)
        yield StoreCall("put_session", (key, new, self._ttl(new, now)))
        return new

    def _due(self, session: Session, now: float) -> bool:
        """Whether the session needs the provider: a refresh, or a re-read of userinfo."""
        return (
            session.refresh_at is not None and now >= session.refresh_at
        ) or now >= session.claims_at + self._claims_interval

    def _stale_or_fail(self, session: Session, now: float) -> Session:
        """Serve with the current access token while it is valid, else fail (never anonymous)."""
        if session.expires_at is None or now < session.expires_at:
            return session
        raise ProviderUnavailable(
            "the session could not be refreshed: the provider is not answering"
        )

    def _expiry(self, expires_in: int | None, now: float) -> tuple[float | None, float | None]:
        if expires_in is None:
            return None, None
        margin = min(float(self.settings.refresh_margin), expires_in / 2)
        return now + expires_in, now + expires_in - margin

    # ------------------------------------------------------------ sign-in

    def _begin_login(
        self, req: GateRequest, return_to: str, now: float, random: Random
    ) -> Program[Outcome]:
        try:
            provider = yield from self._provider(now)
        except ProviderError as exc:
            return self._error(req, exc, "The identity provider is not answering")
        state, nonce, verifier, binding = random(), random(), random() + random(), random()
        redirect_uri = self.origin(req) + self.settings.redirect_path
        login = PendingLogin(
            nonce=nonce,
            code_verifier=verifier,
            return_to=safe_return_to(return_to),
            redirect_uri=redirect_uri,
            binding_hash=hash_key(binding),
            expires_at=now + self.settings.login_timeout,
        )
        try:
            yield StoreCall("put_login", (hash_key(state), login, self.settings.login_timeout))
        except StoreUnavailable as exc:
            return self._error(req, exc, "The session store is not answering")
        url = add_params_to_uri(
            provider.metadata.authorization_endpoint,
            [
                ("response_type", "code"),
                ("client_id", self.settings.client_id),
                ("redirect_uri", redirect_uri),
                ("scope", self._scope),
                ("state", state),
                ("nonce", nonce),
                ("code_challenge", create_s256_code_challenge(verifier)),
                ("code_challenge_method", "S256"),
            ],
        )
        cookie = self._cookie(
            req,
            self._login_cookie_name(req, state),
            binding,
            path=self.settings.redirect_path,
            max_age=self.settings.login_timeout,
        )
        return Reply(302, (("location", url), ("set-cookie", cookie), *_NO_STORE))

    def _callback(self, req: GateRequest, now: float, random: Random) -> Program[Outcome]:
        params = dict(parse_qsl(req.query_string, keep_blank_values=True))
        state = params.get("state")
        clear_login: tuple[tuple[str, str], ...] = ()
        try:
            if not state:
                raise StateError(
                    "The sign-in answer has no state. Start the sign-in from this site."
                )
            cookie_name = self._login_cookie_name(req, state)
            clear_login = (
                ("set-cookie", self._expire_cookie(req, cookie_name, self.settings.redirect_path)),
            )
            login: PendingLogin | None = yield StoreCall("take_login", (hash_key(state),))
            if login is None or now >= login.expires_at:
                raise StateError(
                    "This sign-in has expired or was already used. Start the sign-in again."
                )
            binding = req.cookies.get(cookie_name, "")
            if not hmac.compare_digest(hash_key(binding), login.binding_hash):
                raise StateError(
                    "This sign-in was started in another browser. Start the sign-in again here."
                )
            provider = yield from self._provider(now)
            meta = provider.metadata
            # RFC 9207: the issuer of the authorization response.
            iss = params.get("iss")
            if iss is not None and iss != meta.issuer:
                raise AuthenticationError("The sign-in answer came from another issuer.")
            if iss is None and meta.iss_parameter_supported:
                raise AuthenticationError("The sign-in answer does not name its issuer.")
            if "error" in params:
                raise AuthorizationDenied(_provider_error_message(params))
            code = params.get("code")
            if not code:
                raise AuthenticationError("The sign-in answer has no authorization code.")
            tokens = yield from flows.exchange_code(
                meta,
                self._client(meta),
                code=code,
                redirect_uri=login.redirect_uri,
                code_verifier=login.code_verifier,
            )
            claims: dict[str, Any] = {}
            if tokens.id_token is not None:
                validated = yield from self._validated_id_token(tokens.id_token, login.nonce, now)
                claims = {k: v for k, v in validated.items() if k not in _PROTOCOL_CLAIMS}
            elif meta.kind == "openid":
                raise IDTokenError(
                    "The provider answered without an ID token (does `scopes` include openid?)."
                )
            info = yield from flows.fetch_userinfo(meta, tokens.access_token)
            if claims:
                self._check_same_subject(claims, info)
            else:
                sub = yield from self._oauth_subject(meta, tokens.access_token, info)
                if sub is not None:
                    info = {**info, "sub": sub}
            claims = {**claims, **info}
            if not isinstance(claims.get("sub"), str) or not claims["sub"]:
                raise UserInfoError("The provider did not say who signed in (no sub).")
            if self._restricted and not self._allowed(claims):
                yield from self._revoke(
                    meta,
                    tokens.refresh_token or tokens.access_token,
                    "refresh_token" if tokens.refresh_token else "access_token",
                )
                raise AccessDenied("Your account is not allowed to use this site.")
            expires_at, refresh_at = self._expiry(tokens.expires_in, now)
            session = Session(
                claims=claims,
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                expires_at=expires_at,
                refresh_at=refresh_at,
                scopes=tuple(tokens.scope.split()) if tokens.scope else self.settings.scopes,
                created_at=now,
                last_seen=now,
                claims_at=now,
                user_claim=self.settings.user_claim,
            )
            # A new session id at every sign-in; the one the browser had goes.
            old = req.cookies.get(self.cookie_name(req))
            if old:
                yield StoreCall("delete_session", (hash_key(old),))
            sid = random()
            yield StoreCall("put_session", (hash_key(sid), session, self._ttl(session, now)))
        except OakIDGateError as exc:
            reply = self._error(req, exc, _title(exc), retry=True)
            return replace(reply, headers=reply.headers + clear_login)
        log.info("signed in: session started")
        location = self.origin(req) + login.return_to
        session_cookie = self._cookie(
            req, self.cookie_name(req), sid, path="/", max_age=self.settings.session_lifetime
        )
        return Reply(
            302, (("location", location), ("set-cookie", session_cookie), *clear_login, *_NO_STORE)
        )

    def _validated_id_token(self, token: str, nonce: str, now: float) -> Program[dict[str, Any]]:
        provider = yield from self._provider(now)
        meta = provider.metadata

        def expect(jwks: KeySet | None) -> IDTokenExpectations:
            declared = tuple(k.alg for k in jwks.keys if k.alg) if jwks is not None else ()
            return IDTokenExpectations(
                issuer=meta.issuer,
                client_id=self.settings.client_id,
                client_secret=self.settings.client_secret.reveal(),
                allowed_algs=meta.allowed_algs(declared),
                nonce=nonce,
                now=now,
                leeway=self.settings.clock_skew,
            )

        if token_alg(token) in HMAC_ALGS:
            return validate_id_token(token, None, expect(None))  # keyed with the client secret
        jwks = yield from self._jwks(provider, now, force=False)
        try:
            return validate_id_token(token, jwks, expect(jwks))
        except UnknownSigningKey:
            # Key rotation at the provider: refetch the JWKS, at most this often.
            if now - provider.jwks_at < METADATA_RETRY:
                raise
            jwks = yield from self._jwks(provider, now, force=True)
            return validate_id_token(token, jwks, expect(jwks))

    def _oauth_subject(
        self, meta: ProviderMetadata, access_token: str, info: Mapping[str, Any]
    ) -> Program[str | None]:
        """Who signed in at an OAuth 2.0 server that issues no ID token (RFC 8414 servers).

        Userinfo's ``sub``, else introspection's ``sub`` (RFC 7662), else the
        email that userinfo gives (Auth Agent's userinfo holds only that).
        """
        sub = info.get("sub")
        if isinstance(sub, str) and sub:
            return sub
        active = yield from flows.introspect(meta, self._client(meta), token=access_token)
        if active is not None and isinstance(active.get("sub"), str) and active["sub"]:
            return str(active["sub"])
        email = info.get("email")
        return email if isinstance(email, str) and "@" in email else None

    def _check_same_subject(self, claims: Mapping[str, Any], info: Mapping[str, Any]) -> None:
        if not info:
            return
        sub = info.get("sub")
        if not isinstance(sub, str) or not hmac.compare_digest(
            sub.encode(), str(claims.get("sub", "")).encode()
        ):
            raise UserInfoError("The provider's userinfo names another user than the ID token.")

    def _allowed(self, claims: Mapping[str, Any]) -> bool:
        """The allow-lists: an email that matches, and is verified when the provider says.

        A provider that sends ``email_verified`` must send true (or ``"true"``,
        as some do); one that never sends it is taken at its word.
        """
        email = claims.get("email")
        if not isinstance(email, str):
            return False
        if "email_verified" in claims and claims["email_verified"] not in (True, "true"):
            return False
        email = email.lower()
        if email in self._allowed_emails:
            return True
        return email.rpartition("@")[2] in self._allowed_domains

    # ------------------------------------------------------------ provider

    def _provider(self, now: float) -> Program[ProviderState]:
        state = self.provider
        if state is not None and now - state.fetched_at < METADATA_TTL:
            return state
        if state is not None and now - self._provider_failed_at < METADATA_RETRY:
            return state  # keep what we have while the provider is failing
        if state is None and now - self._provider_failed_at < 1.0:
            raise ProviderUnavailable("the provider's discovery document could not be loaded")
        try:
            metadata = yield from flows.discover(self.settings.issuer)
        except ProviderError as exc:
            self._provider_failed_at = now
            log.warning("discovery failed: %s", exc.message)
            if state is not None:
                return state
            raise
        jwks = state.jwks if state is not None else None
        self.provider = ProviderState(metadata, jwks, now, float("-inf"))
        return self.provider

    def _jwks(self, provider: ProviderState, now: float, *, force: bool) -> Program[KeySet | None]:
        uri = provider.metadata.jwks_uri
        if uri is None:
            return None
        if provider.jwks is not None and not force and now - provider.jwks_at < METADATA_TTL:
            return provider.jwks
        provider.jwks = yield from flows.fetch_jwks(uri)
        provider.jwks_at = now
        return provider.jwks

    def load_provider(self, now: float) -> Program[ProviderState]:
        """Fetch discovery and keys now (start-up, ``check``, readiness)."""
        provider = yield from self._provider(now)
        yield from self._jwks(provider, now, force=False)
        return provider

    def _client(self, metadata: ProviderMetadata) -> flows.ClientCredentials:
        return flows.ClientCredentials(
            self.settings.client_id,
            self.settings.client_secret.reveal(),
            metadata.auth_method(self.settings.token_endpoint_auth_method),
        )

    def _revoke(self, meta: ProviderMetadata, token: str, hint: str) -> Program[None]:
        try:
            ok = yield from flows.revoke(meta, self._client(meta), token=token, hint=hint)
            if not ok:
                log.warning("the provider did not confirm a token revocation")
        except ProviderError as exc:
            log.warning("token revocation failed: %s", exc.message)

    # ------------------------------------------------------------ endpoints

    def _endpoint(self, req: GateRequest, now: float, random: Random) -> Program[Outcome]:
        name = req.path[len(self._prefix_slash) :]
        method = req.method
        if name == "ping":
            return _text(200, "OK")
        if name == "ready":
            return (yield from self._ready(now))
        if name == "callback" and method in ("GET", "HEAD"):
            return (yield from self._callback(req, now, random))
        if name == "start" and method in ("GET", "HEAD"):
            params = dict(parse_qsl(req.query_string))
            return (yield from self._begin_login(req, params.get("rd", "/"), now, random))
        if name == "sign_out" and method in ("GET", "HEAD", "POST"):
            return (yield from self._sign_out(req, now, random))
        if name in ("userinfo", "auth") and method in ("GET", "HEAD"):
            try:
                session = yield from self._current_session(req, now, random)
            except (StoreUnavailable, ProviderUnavailable) as exc:
                return _json_reply(503, {"error": exc.error, "error_description": exc.message})
            if session is None or (self._restricted and not self._allowed(session.claims)):
                return self._unauthenticated(req)
            if name == "userinfo":
                return _json_reply(200, dict(session.claims))
            return Reply(202, _auth_request_headers(session) + _NO_STORE)
        if name in ("callback", "start", "userinfo", "auth"):
            return _text(405, "Method Not Allowed", (("allow", "GET, HEAD"),))
        if name == "sign_out":
            return _text(405, "Method Not Allowed", (("allow", "GET, HEAD, POST"),))
        return error_reply(404, "not_found", "Not found", "There is no such page.", html=True)

    def _ready(self, now: float) -> Program[Outcome]:
        problems = []
        try:
            yield from self.load_provider(now)
        except OakIDGateError as exc:
            problems.append(f"provider: {exc.message}")
        try:
            yield StoreCall("ping", ())
        except StoreUnavailable as exc:
            problems.append(f"session store: {exc.message}")
        if problems:
            return _text(503, "\n".join(problems))
        return _text(200, "OK")

    def _sign_out(self, req: GateRequest, now: float, random: Random) -> Program[Outcome]:
        sid = req.cookies.get(self.cookie_name(req))
        action = self.prefix + "/sign_out" + ("?" + req.query_string if req.query_string else "")
        if req.method != "POST":
            token = self._csrf_token(sid) if sid else None
            return Reply(
                200,
                (
                    ("content-type", "text/html; charset=utf-8"),
                    *_NO_STORE,
                    ("x-frame-options", "DENY"),
                ),
                pages.sign_out_page(action, token),
            )
        body = yield ReadBody()
        form = dict(parse_qsl(body.decode("latin-1"))) if body else {}
        if not self._same_origin_post(req, sid, form.get("csrf", "")):
            return self._error(
                req,
                ForbiddenRequest("a sign-out must come from this site"),
                "Sign-out refused",
            )
        if sid:
            key = hash_key(sid)
            try:
                session: Session | None = yield StoreCall("get_session", (key,))
                if session is not None:
                    provider = yield from self._provider(now)
                    token, hint = (
                        (session.refresh_token, "refresh_token")
                        if session.refresh_token
                        else (session.access_token, "access_token")
                    )
                    yield from self._revoke(provider.metadata, token, hint)
                yield StoreCall("delete_session", (key,))
            except (StoreUnavailable, ProviderError) as exc:
                return self._error(req, exc, "Sign-out could not be completed")
            log.info("signed out: session ended")
        clear = ("set-cookie", self._expire_cookie(req, self.cookie_name(req), "/"))
        params = dict(parse_qsl(req.query_string))
        rd = params.get("rd")
        if rd is not None:
            target = self.origin(req) + safe_return_to(rd)
            return Reply(303, (("location", target), clear, *_NO_STORE))
        return Reply(
            200,
            (("content-type", "text/html; charset=utf-8"), clear, *_NO_STORE),
            pages.signed_out_page(),
        )

    def _same_origin_post(self, req: GateRequest, sid: str | None, csrf: str) -> bool:
        site = req.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = req.headers.get("origin")
        if origin is not None and origin != "null" and origin != self.origin(req):
            return False
        if site == "same-origin" or (origin is not None and origin == self.origin(req)):
            return True
        # Neither header (old browsers, scripts): the form's token must match.
        return bool(sid) and any(
            hmac.compare_digest(csrf.encode(), self._csrf_token(sid or "", key).encode())
            for key in self._secrets
        )

    def _csrf_token(self, sid: str, key: bytes | None = None) -> str:
        mac = hmac.new(key or self._secrets[0], b"sign-out:" + sid.encode(), hashlib.sha256)
        return mac.hexdigest()

    # ------------------------------------------------------------ answers

    def _unauthenticated(self, req: GateRequest) -> Reply:
        login_url = self.prefix + "/start?" + urlencode({"rd": req.url_path})
        return _json_reply(
            401,
            {"error": "unauthenticated", "login_url": login_url},
            (("www-authenticate", 'Bearer realm="oakid-gate"'),),
        )

    def _error(
        self, req: GateRequest, exc: OakIDGateError, title: str, *, retry: bool = False
    ) -> Reply:
        status = exc.status_hint if exc.status_hint >= 400 else 500
        if status >= 500 or isinstance(exc, (StoreUnavailable, ProviderError)):
            log.warning("%s: %s", title, exc.message)
        else:
            log.info("%s: %s", title, exc.message)
        retry_url = self.prefix + "/start?rd=/" if retry else None
        return error_reply(
            status, exc.error, title, exc.message, html=self._wants_html(req), retry_url=retry_url
        )

    # ------------------------------------------------------------ request facts

    def _is_navigation(self, req: GateRequest) -> bool:
        """A browser navigation: GET or HEAD that accepts HTML, not fetch/XHR."""
        if req.method not in ("GET", "HEAD"):
            return False
        mode = req.headers.get("sec-fetch-mode")
        if mode is not None:
            return mode == "navigate"
        if req.headers.get("x-requested-with"):
            return False
        return "text/html" in req.headers.get("accept", "")

    def _wants_html(self, req: GateRequest) -> bool:
        return "text/html" in req.headers.get("accept", "") or (
            req.path.startswith(self._prefix_slash)
            and req.headers.get("sec-fetch-mode") == "navigate"
        )

    def origin(self, req: GateRequest) -> str:
        """The external origin: ``base_url``, else the request's scheme and Host."""
        if self.settings.base_url:
            return self.settings.base_url.rstrip("/")
        host = req.headers.get("host", "")
        if not _valid_host(host):
            host = f"{self.settings.host}:{self.settings.port}"
        return f"{req.scheme}://{host}"

    def is_secure(self, req: GateRequest) -> bool:
        if self._secure_setting is not None:
            return self._secure_setting
        return req.scheme == "https"

    def cookie_name(self, req: GateRequest) -> str:
        return self._cookie_names[self.is_secure(req)]

    def _login_cookie_name(self, req: GateRequest, state: str) -> str:
        prefix = "__Secure-" if self.is_secure(req) else ""
        return f"{prefix}{self.settings.cookie_name}_login_{hash_key(state)[:16]}"

    def _cookie(self, req: GateRequest, name: str, value: str, *, path: str, max_age: int) -> str:
        jar: SimpleCookie = SimpleCookie()
        jar[name] = value
        morsel = jar[name]
        morsel["path"] = path
        morsel["max-age"] = str(max_age)
        morsel["httponly"] = True
        morsel["samesite"] = "Lax" if path != "/" else self.settings.cookie_samesite.capitalize()
        if self.is_secure(req):
            morsel["secure"] = True
        return morsel.OutputString()

    def _expire_cookie(self, req: GateRequest, name: str, path: str) -> str:
        return self._cookie(req, name, "", path=path, max_age=0)


# ---------------------------------------------------------------- helpers

_NO_STORE = (("cache-control", "no-store"), ("pragma", "no-cache"))

#: ID token claims that only served its validation; the app's claims leave them out
_PROTOCOL_CLAIMS = frozenset(
    {"nonce", "at_hash", "c_hash", "s_hash", "exp", "iat", "nbf", "jti", "aud", "azp"}
)


def _text(status: int, text: str, extra: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(
        status, (("content-type", "text/plain; charset=utf-8"), *_NO_STORE, *extra), text.encode()
    )


def _json_reply(
    status: int, body: Mapping[str, Any], extra: tuple[tuple[str, str], ...] = ()
) -> Reply:
    return Reply(
        status,
        (("content-type", "application/json"), *_NO_STORE, *extra),
        json.dumps(body, separators=(",", ":")).encode(),
    )


def error_reply(
    status: int,
    error: str,
    title: str,
    message: str,
    *,
    html: bool,
    retry_url: str | None = None,
) -> Reply:
    """An error answer: a page for a browser, ``{"error", "error_description"}`` otherwise."""
    if not html:
        return _json_reply(status, {"error": error, "error_description": message})
    return Reply(
        status,
        (("content-type", "text/html; charset=utf-8"), *_NO_STORE),
        pages.error_page(title, message, retry_url=retry_url),
    )


def _auth_request_headers(session: Session) -> tuple[tuple[str, str], ...]:
    """The identity headers of ``/oauth2/auth`` (nginx ``auth_request``), UTF-8 values."""
    return tuple(
        ("x-auth-request-" + name, value.decode("latin-1"))  # the adapters write latin-1
        for name, value in identity_fields(session.user)
    )


def _valid_host(host: str) -> bool:
    if not host or len(host) > 255:
        return False
    return all(c.isalnum() or c in ".-:[]_" for c in host)


def _provider_error_message(params: Mapping[str, str]) -> str:
    code = oauth_error_code(params.get("error"))
    if code == "access_denied":
        return "The sign-in was cancelled or refused at the identity provider."
    return f"The identity provider refused the sign-in ({code})."


def _title(exc: OakIDGateError) -> str:
    if isinstance(exc, AccessDenied):
        return "Not allowed"
    if isinstance(exc, (ProviderUnavailable, StoreUnavailable)):
        return "Sign-in is unavailable right now"
    return "Sign-in failed"
