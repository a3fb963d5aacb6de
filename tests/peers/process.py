"""Start a peer process with its output in a log file, and stop it by its id.

Every peer runs in a session (and process group) of its own, whose id is its
process id, so that stopping it also stops anything it started, and a Ctrl-C
in the terminal reaches pytest (which then stops the peers) rather than the
peers directly. Started from the main thread, a peer also gets
``PR_SET_PDEATHSIG`` (through util-linux ``setpriv``, which execs in place and
so keeps the process id): if pytest is killed outright, the peer dies with it.
The signal fires when the *thread* that started the peer ends, which is why
peers started from other threads go without it.

:class:`Running` is what a start-up helper hands back for a peer that serves
on a loopback port: its URL, its log, and ``stop()`` (also as a context
manager, so that a fixture reads ``with start_x(...) as x: yield x``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

__all__ = ["Running", "spawn", "terminate"]

_live: set[subprocess.Popen[bytes]] = set()
_R = TypeVar("_R", bound="Running")
_SETPRIV = shutil.which("setpriv")


def spawn(
    args: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout_path: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``args`` with stderr, and stdout unless ``stdout_path`` is given, appended to
    ``log_path``."""
    argv = list(args)
    if _SETPRIV is not None and threading.current_thread() is threading.main_thread():
        argv = [_SETPRIV, "--pdeathsig", "TERM", "--", *argv]
    with open(log_path, "ab") as log, open(stdout_path or os.devnull, "ab") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log if stdout_path is None else out,
            stderr=log,
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    _live.add(process)
    return process


def terminate(process: subprocess.Popen[bytes], *, timeout: float = 5.0) -> None:
    """Stop ``process`` and its process group: SIGTERM, then SIGKILL after ``timeout``."""
    try:
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout)
    finally:
        _live.discard(process)


@dataclass
class Running:
    """A process started for a test, serving on a loopback port."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        """What the process wrote: its log, then its stdout when that went apart (``.out``)."""
        out = self.log_path.with_suffix(".out")
        text = self.log_path.read_text(errors="replace")
        return text + out.read_text(errors="replace") if out.exists() else text

    def stop(self) -> None:
        terminate(self.process)

    def __enter__(self: _R) -> _R:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


@atexit.register
def _terminate_all() -> None:
    # The fixtures stop their peers; this is the net under them.
    for process in list(_live):
        terminate(process, timeout=2.0)
