"""An ASGI app with a lifespan that records its start-up and shutdown in ``LIFESPAN_LOG``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


def _note(event: str) -> None:
    with Path(os.environ["LIFESPAN_LOG"]).open("a") as log:
        log.write(event + "\n")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    _note("startup")
    yield
    _note("shutdown")


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


app = Starlette(routes=[Route("/", hello)], lifespan=lifespan)
