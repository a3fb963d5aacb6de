"""Start and stop each server the benchmarks compare, pinned to the server core.

Every server is a process of its own on a free port of 127.0.0.1, started
through ``taskset -c CORE`` (so its threads and children stay on that core),
with the ``OAKID_*`` settings in its environment (never on its command line),
its output in a log file, and stopped by its process id (:mod:`peers.process`).

- :func:`start_uvicorn`: one of the :mod:`apps` under uvicorn as PERF.md runs
  it (one worker, no access log, uvloop and httptools when installed).
- :func:`start_uvicorn_cli`: ``uvicorn apps:hello`` exactly as a user types it.
- :func:`start_gate`: ``oakid-gate run apps:hello`` or ``oakid-gate proxy``, the
  commands as installed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from http.client import HTTPConnection
from pathlib import Path

from peers.gate import environment, wait_until_answers
from peers.ports import free_port
from peers.process import Running, spawn, terminate

__all__ = [
    "BENCH_DIR",
    "OAKID_GATE",
    "UVICORN",
    "server_stack",
    "start_gate",
    "start_server",
    "start_uvicorn",
    "start_uvicorn_cli",
    "time_to_first_200",
]

BENCH_DIR = Path(__file__).resolve().parent
_BIN = Path(sys.executable).parent
OAKID_GATE = str(_BIN / "oakid-gate")
UVICORN = str(_BIN / "uvicorn")
SERVER_CORE = 1


def server_stack() -> dict[str, str]:
    """What ``--loop auto --http auto`` picks here: the loop and the HTTP parser."""
    import importlib.util

    def have(name: str) -> bool:
        return importlib.util.find_spec(name) is not None

    return {
        "loop": "uvloop" if have("uvloop") else "asyncio",
        "http": "httptools" if have("httptools") else "h11",
    }


def server_env(settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a server: no ``OAKID_*`` but ``settings``, no PYTHONPATH
    (the servers import :mod:`apps` from this directory only)."""
    env = environment(settings)
    env.pop("PYTHONPATH", None)
    return env


def pinned(argv: Sequence[str], core: int | None) -> list[str]:
    return list(argv) if core is None else ["taskset", "-c", str(core), *argv]


def start_server(
    name: str,
    argv: Sequence[str],
    *,
    workdir: Path,
    port: int,
    env: Mapping[str, str],
    ready: str = "/",
    core: int | None = SERVER_CORE,
) -> Running:
    """Start ``argv`` pinned to ``core`` and wait until ``ready`` answers below 500."""
    log_path = workdir / f"{name}-{port}.log"
    process = spawn(pinned(argv, core), log_path=log_path, env=env, cwd=BENCH_DIR)
    try:
        wait_until_answers(f"http://127.0.0.1:{port}{ready}", process, log_path, timeout=30)
    except BaseException:
        terminate(process)
        raise
    return Running(process, port, log_path)


def uvicorn_argv(target: str, port: int, *, factory: bool) -> list[str]:
    """uvicorn as PERF.md runs it: one worker, no access log, loop and parser auto."""
    argv = [UVICORN, target, "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--no-access-log", "--log-level", "warning", "--loop", "auto", "--http", "auto"]
    return argv + (["--factory"] if factory else [])


def start_uvicorn(
    name: str,
    target: str,
    workdir: Path,
    *,
    port: int | None = None,
    factory: bool = True,
    settings: Mapping[str, str] | None = None,
) -> Running:
    """``apps`` ``target`` (a factory unless ``factory=False``) under uvicorn, on
    ``port`` or a free one."""
    port = port or free_port()
    argv = uvicorn_argv(target, port, factory=factory)
    return start_server(name, argv, workdir=workdir, port=port, env=server_env(settings))


def start_uvicorn_cli(name: str, workdir: Path) -> Running:
    """``uvicorn apps:hello``, nothing more: what a user runs instead of the gate."""
    port = free_port()
    argv = [UVICORN, "apps:hello", "--host", "127.0.0.1", "--port", str(port)]
    return start_server(name, argv, workdir=workdir, port=port, env=server_env())


def start_gate(
    name: str,
    command: Sequence[str],
    workdir: Path,
    *,
    port: int,
    settings: Mapping[str, str],
) -> Running:
    """``oakid-gate COMMAND`` (``run apps:hello`` or ``proxy``) on ``port``."""
    env = server_env({**settings, "host": "127.0.0.1", "port": str(port)})
    argv = [OAKID_GATE, *command]
    return start_server(name, argv, workdir=workdir, port=port, env=env, ready="/oauth2/ping")


def time_to_first_200(
    argv: Sequence[str],
    url_path: str,
    *,
    port: int,
    env: Mapping[str, str],
    log_path: Path,
    timeout: float = 30.0,
) -> float:
    """Seconds from starting ``argv`` (pinned) to its first 200 for ``url_path``."""
    start = time.perf_counter()
    process = spawn(pinned(argv, SERVER_CORE), log_path=log_path, env=env, cwd=BENCH_DIR)
    try:
        while time.perf_counter() - start < timeout:
            if process.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {process.returncode}; see {log_path}")
            if _status(port, url_path) == 200:
                return time.perf_counter() - start
            time.sleep(0.002)
        raise TimeoutError(f"no 200 from {url_path} after {timeout} s; see {log_path}")
    finally:
        terminate(process)


def _status(port: int, path: str) -> int | None:
    connection = HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()
