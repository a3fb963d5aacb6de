"""The machine and software a run was measured on, for the results file."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from peers.oidc_provider import OIDC_PROVIDER_VERSION
from servers import server_stack

__all__ = ["machine_info"]

ROOT = Path(__file__).resolve().parent.parent


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "?"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def _commit() -> str:
    head = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    return head + (" (with uncommitted changes)" if dirty not in ("", "?") else "")


def _software() -> str:
    stack = server_stack()
    python = ", ".join(
        f"{name} {_version(name)}"
        for name in ("oakid-gate", "uvicorn", "starlette", "httpx", "redis")
    )
    mod_oidc = _first_line(["dpkg-query", "-W", "-f=${Version}", "libapache2-mod-auth-openidc"])
    return (
        f"Python {platform.python_version()} ({python}; loop {stack['loop']}, "
        f"parser {stack['http']}); {_first_line(['wrk', '-v']).split(' [')[0]}; "
        f"{_first_line(['apache2', '-v']).removeprefix('Server version: ')}, "
        f"mod_auth_openidc {mod_oidc}; {_first_line(['redis-server', '--version'])[:40]}; "
        f"node {_first_line(['node', '--version'])}, oidc-provider {OIDC_PROVIDER_VERSION}"
    )


def machine_info() -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "software": _software(),
        "commit": _commit(),
    }
