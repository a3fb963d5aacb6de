"""What the relay's tests share: a relay for a URL, a stand-in for the ASGI server, answers."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from apps.raw_upstream import Request, reply

from oakid_gate.proxy.limits import Limits
from oakid_gate.proxy.relay import HTTPRelay
from oakid_gate.proxy.upstream import Upstream
from oakid_gate.settings import Settings

MB = 1024 * 1024
SECOND = reply(200, b"second")  # every answer after the first, unless a test says otherwise


def relay_for(url: str, ssl_context: ssl.SSLContext | None = None, **limits: Any) -> HTTPRelay:
    settings = Settings.load(
        env={}, client_id="c", client_secret="x", secret="s" * 32, upstream=url
    )
    return HTTPRelay(Upstream(settings, ssl_context), Limits(**limits))


@dataclass
class Seen:
    """What the client was sent, and how much of its body the relay took."""

    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False  # the last body message (more_body false) came
    pulled: int = 0  # request body bytes the relay received

    def header(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k == name]


class Client:
    """A stand-in for the ASGI server: one request, its body as ``chunks``; stalls and leaves."""

    def __init__(
        self,
        method: str = "GET",
        target: str = "/",
        *,
        chunks: Iterable[bytes] | None = None,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        raw, _, query = target.partition("?")
        self.scope = {
            "type": "http",
            "method": method,
            "scheme": "http",
            "path": unquote(raw),  # decoded, as servers do
            "raw_path": raw.encode(),
            "query_string": query.encode(),
            "headers": [(b"host", b"app.example"), *headers],
            "client": ("192.0.2.10", 40000),
        }
        self.seen = Seen()
        self.messages = self._messages(chunks)
        self.leave = asyncio.Event()  # set: the client disconnects
        self.stall = asyncio.Event()  # cleared: the client stops reading the answer
        self.stall.set()

    def _messages(self, chunks: Iterable[bytes] | None) -> Iterator[dict[str, Any]]:
        if chunks is None:
            yield {"type": "http.request", "body": b"", "more_body": False}
            return
        pending: bytes | None = None
        for chunk in chunks:
            if pending is not None:
                yield {"type": "http.request", "body": pending, "more_body": True}
            self.seen.pulled += len(chunk)
            pending = chunk
        yield {"type": "http.request", "body": pending or b"", "more_body": False}

    async def receive(self) -> dict[str, Any]:
        if not self.leave.is_set():
            message = next(self.messages, None)
            if message is not None:
                return message
        await self.leave.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.seen.status = message["status"]
            self.seen.headers = list(message["headers"])
            return
        await self.stall.wait()
        self.seen.body += message.get("body", b"")
        self.seen.ended = not message.get("more_body", False)

    async def through(self, relay: HTTPRelay) -> Seen:
        await relay(self.scope, self.receive, self.send)
        return self.seen


def answering(first: bytes = SECOND, *, close: bool = False) -> Any:
    """An upstream that answers ``first`` to its first request (then closes, with ``close``),
    and :data:`SECOND` to every other."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(first if request.number == 1 else SECOND)
        if close and request.number == 1:
            await writer.drain()
            writer.close()

    return answer


def until_close(status: bytes) -> Any:
    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        if request.number == 1:
            writer.write(status + b"\r\nx-kind: until-close\r\n\r\nuntil the close")
            await writer.drain()
            writer.close()
        else:
            writer.write(SECOND)

    return answer


def in_pieces(data: bytes) -> Any:
    """The first answer seven bytes at a time (llhttp reads it across many packets)."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        if request.number > 1:
            writer.write(SECOND)
            return
        for i in range(0, len(data), 7):
            writer.write(data[i : i + 7])
            await writer.drain()
            await asyncio.sleep(0.002)

    return answer


async def never_answer(request: Request, writer: asyncio.StreamWriter) -> None:
    """Read on, answer nothing, until the proxy closes the connection."""
    assert request.reader is not None
    while await request.reader.read(65536):
        pass


async def close_at_once(request: Request, writer: asyncio.StreamWriter) -> None:
    writer.close()
