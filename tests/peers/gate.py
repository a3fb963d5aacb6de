"""Start the gate itself as a process: ``oakid-gate run`` or ``oakid-gate dev-idp``."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from peers.ports import free_port
from peers.process import spawn, terminate

__all__ = ["GateProcess", "start_dev_idp", "start_gate"]

TESTS = Path(__file__).resolve().parent.parent
OAKID_GATE = str(Path(sys.executable).with_name("oakid-gate"))


@dataclass
class GateProcess:
    """A running ``oakid-gate`` command on loopback."""

    url: str
    port: int
    process: object
    log_path: Path

    def stop(self) -> None:
        terminate(self.process)  # type: ignore[arg-type]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait(url: str, process: object, log_path: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:  # type: ignore[attr-defined]
            raise RuntimeError(f"{url} exited early:\n{log_path.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def start_gate(
    workdir: Path,
    *,
    app: str = "apps.claims_app:app",
    settings: Mapping[str, str],
    port: int | None = None,
    command: Sequence[str] = ("run",),
    extra_args: Sequence[str] = (),
) -> GateProcess:
    """``oakid-gate run APP`` with ``OAKID_*`` settings in the environment (never on argv)."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAKID_")}
    env.update({f"OAKID_{k.upper()}": v for k, v in settings.items()})
    env.update({"OAKID_PORT": str(port), "OAKID_HOST": "127.0.0.1", "PYTHONPATH": str(TESTS)})
    log_path = workdir / f"gate-{port}.log"
    args = [OAKID_GATE, *command, *([app] if command == ("run",) else []), *extra_args]
    process = spawn(args, log_path=log_path, env=env, cwd=TESTS)
    url = f"http://127.0.0.1:{port}"
    _wait(f"{url}/oauth2/ping", process, log_path)
    return GateProcess(url, port, process, log_path)


def start_dev_idp(
    workdir: Path, *, client_id: str, client_secret: str, access_token_ttl: int = 3600
) -> GateProcess:
    """``oakid-gate dev-idp`` on a free port, logging events as JSON lines."""
    port = free_port()
    log_path = workdir / f"dev-idp-{port}.log"
    events = workdir / f"dev-idp-{port}.events"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAKID_")}
    env["OAKID_CLIENT_SECRET"] = client_secret
    process = spawn(
        [OAKID_GATE, "dev-idp", "--port", str(port), "--client-id", client_id,
         "--access-token-ttl", str(access_token_ttl), "--log-file", str(events)],
        log_path=log_path,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    _wait(f"{url}/.well-known/openid-configuration", process, log_path)
    return GateProcess(url, port, process, events)
