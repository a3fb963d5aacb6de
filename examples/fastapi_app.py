"""A FastAPI app behind oakid-gate, with a dependency that returns the user.

Settings come from ``OAKID_*`` variables. Serve it with uvicorn::

    uvicorn --host 127.0.0.1 --port 8000 examples.fastapi_app:app
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request

from oakid_gate import OakIDMiddleware, OakIDUser


def current_user(request: Request) -> OakIDUser:
    """The signed-in user; 401 on a public path when nobody is signed in."""
    if not isinstance(request.user, OakIDUser):
        raise HTTPException(status_code=401, detail="sign in first")
    return request.user


User = Annotated[OakIDUser, Depends(current_user)]
api = FastAPI()


@api.get("/")
def home(user: User) -> dict[str, str | None]:
    return {"hello": user.display_name, "email": user.email, "sub": user.sub}


@api.get("/health")
def health(request: Request) -> dict[str, bool]:
    return {"ok": True, "signed_in": request.user.is_authenticated}


app = OakIDMiddleware(api, public_paths=["/health"])  # settings checked at start-up
