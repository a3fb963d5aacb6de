"""The provider as the gate knows it: metadata and keys, cached; how the gate
authenticates to it; what it may ask of it beyond the flows.

- Discovery is refetched every hour; while the provider fails, what was
  loaded is kept (retried at most every 10 seconds), and a gate that never
  loaded it fails fast for a second before trying again. One fetch at a time
  per process: concurrent requests use what there is, or wait for it.
- The JWKS is fetched only when an asymmetric token needs it, and refetched
  on an unknown ``kid`` (key rotation) at most every 10 seconds.
- ID tokens (:mod:`oakid_gate.gate.idtoken`): HMAC only ever keyed with the
  client secret, asymmetric algorithms only with the provider's JWKS, the
  algorithm from an allow-list.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from joserfc.jwk import KeySet

from ..errors import ProviderError, ProviderUnavailable
from ..settings import Settings
from . import flows
from .backchannel import LogoutToken, check_logout_claims
from .effects import Program, sleep
from .idtoken import (
    HMAC_ALGS,
    IDTokenExpectations,
    UnknownSigningKey,
    token_alg,
    validate_id_token,
    verify_signature,
)
from .metadata import ProviderMetadata

__all__ = ["METADATA_RETRY", "METADATA_TTL", "Provider", "ProviderState"]

log = logging.getLogger("oakid_gate")

METADATA_TTL = 3600.0  # seconds between discovery refetches
METADATA_RETRY = 10.0  # at most one refetch this often (failures, unknown kid)
FIRST_LOAD_RETRY = 1.0  # a gate that never loaded the metadata retries this often
LOAD_POLL = 0.05  # how often a program waiting for another's discovery looks
_DISCOVERY = "discovery"


@dataclass(slots=True)
class ProviderState:
    """Provider metadata and keys, with when they were fetched."""

    metadata: ProviderMetadata
    jwks: KeySet | None
    fetched_at: float
    jwks_at: float


class Provider:
    """One provider's metadata, keys and client registration."""

    def __init__(self, settings: Settings) -> None:
        self._issuer = settings.issuer
        self._client_id = settings.client_id
        self._client_secret = settings.client_secret
        self._auth_method = settings.token_endpoint_auth_method
        self._clock_skew = settings.clock_skew
        #: what was loaded; swapped as a whole, so threads never see half of it
        self.state: ProviderState | None = None
        self._failed_at = float("-inf")
        self._keys_failed_at = float("-inf")
        #: what a program of this process is fetching now, and until when it may
        self._loading: dict[str, float] = {}
        # discovery may take two requests (OpenID, then RFC 8414)
        self._load_window = 2 * settings.http_timeout + 1

    def current(self, now: float) -> Program[ProviderState]:
        """The provider's metadata, fetched when it is missing or an hour old."""
        state = self.state
        if state is not None and now - state.fetched_at < METADATA_TTL:
            return state
        if state is not None and now - self._failed_at < METADATA_RETRY:
            return state  # keep what we have while the provider is failing
        if state is None and now - self._failed_at < FIRST_LOAD_RETRY:
            raise ProviderUnavailable("the provider's discovery document could not be loaded")
        # Single flight: one program of this process fetches discovery; the others
        # use the metadata there is, or wait for the fetch. setdefault is atomic, so
        # threads cannot both claim it; a claim past its time is taken over.
        until = now + self._load_window
        claim = self._loading.setdefault(_DISCOVERY, until)
        if claim is not until and now < claim:
            if state is not None:
                return state
            return (yield from self._await_discovery(now))
        self._loading[_DISCOVERY] = until
        try:
            metadata = yield from flows.discover(self._issuer)
        except ProviderError as exc:
            self._failed_at = now
            log.warning("discovery failed: %s", exc.message)
            if state is not None:
                return state
            raise
        finally:
            self._loading.pop(_DISCOVERY, None)
        jwks = state.jwks if state is not None else None
        self.state = ProviderState(metadata, jwks, now, float("-inf"))
        return self.state

    def _await_discovery(self, now: float) -> Program[ProviderState]:
        """Wait for another program's discovery: its result, or its failure."""
        while True:
            now = yield from sleep(LOAD_POLL)
            if self.state is not None:
                return self.state
            claim = self._loading.get(_DISCOVERY)
            if claim is None or now >= claim:
                return (yield from self.current(now))

    def keys(self, state: ProviderState, now: float, *, force: bool) -> Program[KeySet | None]:
        """The provider's JWKS (``None`` when it publishes none)."""
        uri = state.metadata.jwks_uri
        if uri is None:
            return None
        if state.jwks is not None and not force and now - state.jwks_at < METADATA_TTL:
            return state.jwks
        if now - self._keys_failed_at < METADATA_RETRY:
            # Failing: keep what we have, or fail at once; never a fetch per request.
            if state.jwks is not None:
                return state.jwks
            raise ProviderUnavailable("the provider's keys (JWKS) could not be loaded")
        try:
            state.jwks = yield from flows.fetch_jwks(uri)
        except ProviderError as exc:
            self._keys_failed_at = now
            log.warning("the provider's keys could not be loaded: %s", exc.message)
            if state.jwks is not None:
                return state.jwks
            raise
        state.jwks_at = now
        return state.jwks

    def load(self, now: float) -> Program[ProviderState]:
        """Fetch discovery and keys now (start-up, ``check``, readiness)."""
        state = yield from self.current(now)
        yield from self.keys(state, now, force=False)
        return state

    def client(self, metadata: ProviderMetadata) -> flows.ClientCredentials:
        """How the gate authenticates at the token, revocation and introspection endpoints."""
        return flows.ClientCredentials(
            self._client_id,
            self._client_secret.reveal(),
            metadata.auth_method(self._auth_method),
        )

    def revoke(self, metadata: ProviderMetadata, token: str, hint: str) -> Program[None]:
        """Revoke a token (RFC 7009), best effort: a failure is logged, never raised."""
        try:
            ok = yield from flows.revoke(metadata, self.client(metadata), token=token, hint=hint)
            if not ok:
                log.warning("the provider did not confirm a token revocation")
        except ProviderError as exc:
            log.warning("token revocation failed: %s", exc.message)

    def id_token_claims(self, token: str, nonce: str, now: float) -> Program[dict[str, Any]]:
        """The claims of a valid ID token (OpenID Connect Core 3.1.3.7), else IDTokenError."""
        state = yield from self.current(now)
        if token_alg(token) in HMAC_ALGS:
            return validate_id_token(token, None, self._expect(state, None, nonce, now))
        jwks = yield from self.keys(state, now, force=False)
        try:
            return validate_id_token(token, jwks, self._expect(state, jwks, nonce, now))
        except UnknownSigningKey:
            # Key rotation at the provider: refetch the JWKS, at most this often.
            if now - state.jwks_at < METADATA_RETRY:
                raise
            jwks = yield from self.keys(state, now, force=True)
            return validate_id_token(token, jwks, self._expect(state, jwks, nonce, now))

    def logout_token(self, token: str, now: float) -> Program[LogoutToken]:
        """A valid back-channel logout token (:mod:`.backchannel`), else IDTokenError."""
        state = yield from self.current(now)
        declared: tuple[str, ...] = ()
        jwks = None
        if token_alg(token) not in HMAC_ALGS:
            jwks = yield from self.keys(state, now, force=False)
            declared = tuple(k.alg for k in jwks.keys if k.alg) if jwks is not None else ()
        algs = state.metadata.allowed_algs(declared)
        secret = self._client_secret.reveal()
        what = "the logout token"
        try:
            claims = verify_signature(token, jwks, algs, secret, what)
        except UnknownSigningKey:
            if now - state.jwks_at < METADATA_RETRY:
                raise
            jwks = yield from self.keys(state, now, force=True)
            claims = verify_signature(token, jwks, algs, secret, what)
        return check_logout_claims(
            claims,
            issuer=state.metadata.issuer,
            client_id=self._client_id,
            now=now,
            leeway=self._clock_skew,
        )

    def _expect(
        self, state: ProviderState, jwks: KeySet | None, nonce: str, now: float
    ) -> IDTokenExpectations:
        declared = tuple(k.alg for k in jwks.keys if k.alg) if jwks is not None else ()
        return IDTokenExpectations(
            issuer=state.metadata.issuer,
            client_id=self._client_id,
            client_secret=self._client_secret.reveal(),
            allowed_algs=state.metadata.allowed_algs(declared),
            nonce=nonce,
            now=now,
            leeway=self._clock_skew,
        )
