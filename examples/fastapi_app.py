"""A FastAPI app behind oakid-gate, on oakid_gate.fastapi's dependencies.

Settings come from ``OAKID_*`` variables. Serve it with uvicorn::

    uvicorn --host 127.0.0.1 --port 8000 examples.fastapi_app:app

``/docs`` and ``/openapi.json`` are public, and mark the routes that need a sign-in.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from oakid_gate import OakIDMiddleware
from oakid_gate.fastapi import CurrentSession, CurrentUser, OptionalUser, requires

api = FastAPI(title="oakid-gate FastAPI example")


@api.get("/")
async def home(user: CurrentUser) -> dict[str, str | None]:
    return {"hello": user.display_name, "email": user.email, "sub": user.sub}


@api.get("/health")
async def health(user: OptionalUser) -> dict[str, bool]:
    return {"ok": True, "signed_in": user is not None}


@api.get("/token")
async def token(session: CurrentSession) -> dict[str, object]:
    """What calling an API on the user's behalf needs: a fresh access token."""
    return {"scopes": session.scopes, "expires_at": session.expires_at}


@api.get("/admin", dependencies=[Depends(requires(groups=["admins"]))])
async def admin() -> dict[str, str]:
    return {"admin": "yes"}  # 403 for a signed-in user outside "admins"


# Wrapping here checks the settings when the module is imported.
app = OakIDMiddleware(api, public_paths=["/health", "/docs", "/openapi.json"])
