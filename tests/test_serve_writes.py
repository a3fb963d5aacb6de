"""``serve_asgi(batch_writes=True)``: a connection's writes of one event-loop turn go out as one."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import httpx
import pytest
import uvicorn

from oakid_gate.serve import WriteBatch, batched_httptools_protocol


class Recorder:
    """A transport that records what reaches it."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.extra = {"peername": ("192.0.2.1", 1)}

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)


async def test_writes_of_one_turn_go_out_as_one_and_close_flushes_first() -> None:
    """Head and body written in one turn reach the socket in one write, at the end of the
    turn; close sends what is pending first; nothing is written once closing; the rest of
    the transport is the transport's own."""
    recorder = Recorder()
    batch = WriteBatch(cast(asyncio.Transport, recorder), asyncio.get_running_loop())
    batch.write(b"HTTP/1.1 200 OK\r\n\r\n")
    batch.write(b"hello")
    assert recorder.writes == [] and batch.get_write_buffer_size() == 24
    await asyncio.sleep(0)
    assert recorder.writes == [b"HTTP/1.1 200 OK\r\n\r\nhello"]
    batch.writelines([b"a", b"b"])
    batch.close()
    assert recorder.writes[1:] == [b"ab"] and recorder.closed
    batch.write(b"late")
    await asyncio.sleep(0)
    assert len(recorder.writes) == 2
    assert batch.get_extra_info("peername") == ("192.0.2.1", 1)


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": b"hello"})


@pytest.mark.parametrize("requests", [1, 3])
async def test_uvicorn_with_batched_writes_answers_whole(requests: int) -> None:
    """uvicorn on the batched protocol answers one request or several on a connection."""
    protocol = batched_httptools_protocol()
    assert protocol is not None
    config = uvicorn.Config(hello, host="127.0.0.1", port=0, http=protocol, lifespan="off")
    config.log_level, config.access_log = "warning", False
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            answers = [await http.get("/") for _ in range(requests)]
    finally:
        server.should_exit = True
        await task
    assert [(a.status_code, a.text) for a in answers] == [(200, "hello")] * requests
