"""Free loopback ports, and waiting for a peer to listen on one."""

from __future__ import annotations

import socket
import subprocess
import time

__all__ = ["LOOPBACK", "free_port", "wait_for_port"]

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that nothing listens on right now.

    The port is released before returning, so the caller should bind it soon;
    on loopback the window in which another program could take it is tiny.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int,
    host: str = LOOPBACK,
    *,
    timeout: float = 10.0,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Block until something accepts TCP connections on ``host:port``.

    Raises ``TimeoutError`` after ``timeout`` seconds, or ``RuntimeError`` at
    once if ``process`` (the peer expected to listen) has exited.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.pid} exited with {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.01)
