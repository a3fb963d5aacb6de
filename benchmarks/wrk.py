"""wrk, run on one core and checked: every response counted, its status and body compared.

::

    expect = Expect(200, b"Hello, world!")
    result = run_wrk(url, {"Cookie": cookie}, expect, Load(duration=10))
    size = response_size(url, {"Cookie": cookie})  # one response, as wrk reads it
    problems = check(result, size, Load(...))       # [] when every response was right

The wrk script (``verify.lua``) compares each response's status and body with
the expected ones and prints wrk's summary as JSON; :func:`check` also reads
wrk's own report ("Non-2xx or 3xx responses", "Socket errors") and compares
the bytes read per request with the size of one real response, which catches
a response that changed size (a redirect, an error page, a new cookie).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Expect", "Load", "WrkResult", "check", "missing_wrk", "response_size", "run_wrk"]

SCRIPT = Path(__file__).resolve().parent / "verify.lua"
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s*(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors:\s*(.*)")


def missing_wrk() -> str | None:
    """What is missing to run wrk, or None."""
    if shutil.which("wrk") is None:
        return "wrk is not installed (scripts/install-bench.sh)"
    if shutil.which("taskset") is None:
        return "taskset (util-linux) is not installed"
    return None


@dataclass(frozen=True)
class Expect:
    """The response every request must get: its status, its exact body, and headers
    it must carry (checked before and after each run, not by wrk)."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Load:
    """How wrk loads the server: ``connections`` over ``duration`` seconds, on ``core``."""

    duration: float = 10.0
    connections: int = 32
    threads: int = 1
    core: int = 0


@dataclass
class WrkResult:
    """What one wrk run reported."""

    requests: int
    bytes: int
    duration: float
    errors: dict[str, int]
    latency_us: dict[str, float]
    responses: int
    bad_status: int
    bad_body: int
    first_bad: str
    non_2xx: int
    socket_errors: str
    output: str = field(repr=False)

    @property
    def rps(self) -> float:
        return self.requests / self.duration if self.duration else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "bytes": self.bytes,
            "duration_s": self.duration,
            "rps": self.rps,
            "errors": self.errors,
            "latency_us": self.latency_us,
            "responses": self.responses,
            "bad_status": self.bad_status,
            "bad_body": self.bad_body,
            "first_bad": self.first_bad,
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
        }


def wrk_command(url: str, headers: Mapping[str, str], expect: Expect, load: Load) -> list[str]:
    """``taskset -c CORE wrk ...`` for ``url``, the checking script and its arguments."""
    argv = ["taskset", "-c", str(load.core), "wrk", f"-t{load.threads}", f"-c{load.connections}"]
    argv += [f"-d{load.duration:g}s", "--latency", "-s", str(SCRIPT)]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    return [*argv, url, str(expect.status), expect.body.decode("latin-1")]


def run_wrk(url: str, headers: Mapping[str, str], expect: Expect, load: Load) -> WrkResult:
    """Run wrk against ``url``; raises RuntimeError when it fails or prints no result."""
    argv = wrk_command(url, headers, expect, load)
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=load.duration + 30, check=False
    )
    output = done.stdout + done.stderr
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK-RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{output[-2000:]}")
    data = json.loads(line.removeprefix("WRK-RESULT "))
    non_2xx = _NON_2XX.search(done.stdout)
    socket_errors = _SOCKET_ERRORS.search(done.stdout)
    return WrkResult(
        requests=data["requests"],
        bytes=data["bytes"],
        duration=data["duration_us"] / 1e6,
        errors=data["errors"],
        latency_us=data["latency_us"],
        responses=data["responses"],
        bad_status=data["bad_status"],
        bad_body=data["bad_body"],
        first_bad=data["first_bad"],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=socket_errors.group(1).strip() if socket_errors else "",
        output=done.stdout,
    )


def check(result: WrkResult, size: int, load: Load) -> list[str]:
    """What was wrong with a run: [] when every response was the expected one."""
    problems = []
    if result.requests == 0:
        problems.append("no request completed")
    if result.bad_status:
        problems.append(f"{result.bad_status} responses with another status ({result.first_bad})")
    if result.bad_body:
        problems.append(f"{result.bad_body} responses with another body ({result.first_bad})")
    if result.responses != result.requests:
        problems.append(f"{result.responses} responses checked of {result.requests} requests")
    if result.non_2xx:
        problems.append(f"wrk: Non-2xx or 3xx responses: {result.non_2xx}")
    if result.socket_errors or any(result.errors.values()):
        problems.append(f"wrk: socket errors {result.errors}")
    # wrk counts the bytes of responses still arriving when time is up, at most
    # one per connection: allow that much, and nothing else.
    excess = result.bytes - result.requests * size
    if not 0 <= excess <= load.connections * size:
        per_request = result.bytes / max(result.requests, 1)
        problems.append(f"{per_request:.1f} bytes read per request, one response is {size}")
    return problems


def response_size(url: str, headers: Mapping[str, str], timeout: float = 10.0) -> int:
    """The size in bytes (status line, headers, body) of the response to the GET that
    wrk sends for ``url`` with ``headers``, on a kept-alive HTTP/1.1 connection."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    lines = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(request)
        return len(_read_response(sock))


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += _recv(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip().lower()
    if b"content-length" in fields:
        need = int(fields[b"content-length"])
        while len(body) < need:
            body += _recv(sock)
    elif fields.get(b"transfer-encoding") == b"chunked":
        while not body.endswith(b"0\r\n\r\n"):
            body += _recv(sock)
    return head + b"\r\n\r\n" + body


def _recv(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("the server closed the connection mid-response")
    return chunk
