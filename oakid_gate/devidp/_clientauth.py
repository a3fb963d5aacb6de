"""Client and bearer authentication (RFC 6749 2.3.1 and 3.2.1, RFC 6750 2.1).

A client authenticates with HTTP Basic (``client_secret_basic``, id and
secret form-urlencoded inside it) or with ``client_id`` and ``client_secret``
in the body (``client_secret_post``), never both. The token endpoint requires
it; the revocation endpoint takes it optionally, but checks it when given.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote_plus

from ._errors import InvalidClient, InvalidRequest, InvalidToken
from ._params import Params, equal, optional_param
from .config import DevClient

__all__ = [
    "ClientCredentials",
    "authenticate_client",
    "bearer_token",
    "client_credentials",
    "revocation_client",
    "token_client",
]


@dataclass(frozen=True)
class ClientCredentials:
    """What a request claims about its client; not yet checked."""

    client_id: str
    client_secret: str | None = None
    method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_post"


def _decode_basic(value: str) -> tuple[str, str]:
    """RFC 6749 2.3.1: form-urlencoded id and secret inside HTTP Basic."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient("malformed HTTP Basic credentials") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise InvalidClient("malformed HTTP Basic credentials")
    return unquote_plus(client_id), unquote_plus(secret)


def client_credentials(authorization: str | None, params: Params) -> ClientCredentials | None:
    """The client credentials a request carries, from HTTP Basic or the body.

    Raises InvalidRequest when both ways are used (RFC 6749 2.3), InvalidClient
    when the Basic header is malformed.
    """
    body_id = optional_param(params, "client_id")
    body_secret = optional_param(params, "client_secret")
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() == "basic":
        if body_secret is not None:
            raise InvalidRequest("use one client authentication method: HTTP Basic or the body")
        client_id, secret = _decode_basic(value)
        if body_id is not None and body_id != client_id:
            raise InvalidRequest("client_id in the body differs from the HTTP Basic one")
        return ClientCredentials(client_id, secret, "client_secret_basic")
    if body_id is None:
        if body_secret is not None:
            raise InvalidRequest("client_secret without client_id")
        return None
    return ClientCredentials(body_id, body_secret, "client_secret_post")


def authenticate_client(
    clients: Mapping[str, DevClient], credentials: ClientCredentials
) -> DevClient:
    """The client, if its secret is right; else InvalidClient."""
    client = clients.get(credentials.client_id)
    secret = credentials.client_secret
    if client is None or secret is None or not equal(secret, client.client_secret):
        raise InvalidClient("client authentication failed")
    return client


def token_client(
    clients: Mapping[str, DevClient], authorization: str | None, params: Params
) -> DevClient:
    """The authenticated client of a token request, which must authenticate."""
    credentials = client_credentials(authorization, params)
    if credentials is None:
        raise InvalidClient("client authentication required: HTTP Basic or client_secret_post")
    return authenticate_client(clients, credentials)


def revocation_client(
    clients: Mapping[str, DevClient], authorization: str | None, params: Params
) -> DevClient | None:
    """The client of a revocation request: optional, but checked when given."""
    credentials = client_credentials(authorization, params)
    if credentials is None:
        return None
    return authenticate_client(clients, credentials)


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 2.1)."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("missing bearer access token")
    return token
