"""A throw-away ``redis-server`` on a free loopback port.

::

    server = start_redis(tmp_path)
    server.url        # "redis://127.0.0.1:PORT/0"
    server.restart()  # same port, empty data (nothing is persisted)
    server.stop()

Nothing is saved (``--save '' --appendonly no``), it listens on 127.0.0.1 only
(``protected-mode`` stays on), and its log goes to ``redis.log`` in the work
directory.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from peers.ports import LOOPBACK, free_port
from peers.process import spawn, terminate

__all__ = ["RedisServer", "redis_server_path", "start_redis"]


def redis_server_path() -> str | None:
    """Where ``redis-server`` is, or None when it is not installed."""
    return shutil.which("redis-server")


class RedisServer:
    """A running ``redis-server``; start it with :func:`start_redis`."""

    def __init__(self, workdir: Path, port: int, executable: str) -> None:
        self.workdir = workdir
        self.port = port
        self.host = LOOPBACK
        self.url = f"redis://{LOOPBACK}:{port}/0"
        self.log_path = workdir / "redis.log"
        self._executable = executable
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"RedisServer(url={self.url!r}, running={self.running})"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, *, timeout: float = 10.0) -> None:
        """Start the server on :attr:`port` and wait until it answers PING."""
        if self.running:
            return
        options = {
            "bind": LOOPBACK,
            "port": str(self.port),
            "protected-mode": "yes",
            "save": "",  # no snapshots
            "appendonly": "no",
            "daemonize": "no",
            "dir": str(self.workdir),
            "loglevel": "warning",
            "logfile": "",  # to stdout, which is redis.log
        }
        argv = [self._executable]
        for name, value in options.items():
            argv += [f"--{name}", value]
        self._process = spawn(argv, log_path=self.log_path, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self._process.returncode}; see {self.log_path}"
                )
            try:
                if self.command("PING") == b"+PONG":
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"redis-server did not answer on port {self.port}")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop the server (by its process id) and wait for it to exit."""
        if self._process is not None:
            terminate(self._process)
            self._process = None

    def restart(self) -> None:
        """Stop and start again on the same port; the data is gone."""
        self.stop()
        self.start()

    def flush(self) -> None:
        """Empty every database (``FLUSHALL``)."""
        reply = self.command("FLUSHALL")
        if reply != b"+OK":
            raise RuntimeError(f"FLUSHALL answered {reply!r}")

    def command(self, *args: str) -> bytes:
        """Send one command in RESP and return the first line of the reply.

        Enough for PING and FLUSHALL without a client library; tests use
        redis-py for anything else.
        """
        payload = f"*{len(args)}\r\n".encode()
        for arg in args:
            data = arg.encode()
            payload += b"$%d\r\n%s\r\n" % (len(data), data)
        with socket.create_connection((LOOPBACK, self.port), timeout=2.0) as sock:
            sock.sendall(payload)
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        return reply.split(b"\r\n", 1)[0]


def start_redis(workdir: Path, *, port: int | None = None) -> RedisServer:
    """Start ``redis-server`` on ``port`` (default: a free one) with its log in ``workdir``."""
    executable = redis_server_path()
    if executable is None:
        raise FileNotFoundError("redis-server is not installed (scripts/install-peers.sh)")
    workdir.mkdir(parents=True, exist_ok=True)
    server = RedisServer(workdir, free_port() if port is None else port, executable)
    server.start()
    return server
