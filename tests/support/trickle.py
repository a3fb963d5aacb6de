"""A provider that answers one byte at a time, over a real socket: the slowest kind.

Its status line and headers come a byte every ``interval`` seconds, so a
client whose timeouts are per read never times out; only a total deadline
stops it. It serves every connection the same way until it is closed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

__all__ = ["trickling_provider"]

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


@contextlib.contextmanager
def trickling_provider(interval: float = 0.1) -> Iterator[str]:
    """Serve on a free loopback port; yields its origin, ``http://127.0.0.1:PORT``."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    stop = threading.Event()
    connections: list[socket.socket] = []

    def trickle(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.recv(65536)  # the request, whatever it is
            for byte in ANSWER:
                if stop.wait(interval):
                    return
                conn.sendall(bytes([byte]))

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            connections.append(conn)
            threading.Thread(target=trickle, args=(conn,), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        acceptor.join(2)
        for conn in connections:
            conn.close()
        listener.close()
        time.sleep(0)  # let the trickling threads see the stop
