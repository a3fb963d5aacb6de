"""A plain ``pip install oakid-gate`` (no extras) gives working commands (issue 11 item 6).

The package is built and installed from this checkout into a fresh virtual
environment with nothing else; then ``--version``, ``dev-idp``, ``demo``, ``run``
and ``proxy`` start from it and answer. What only some users need comes as
extras: ``[redis]``, ``[metrics]``, ``[flask]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from peers.ports import free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` directory of a fresh venv with only ``pip install <checkout>``."""
    venv = tmp_path_factory.mktemp("plain") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    result = subprocess.run([*pip, str(REPO)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return venv / "bin"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OAKID_", "PYTHON"))}
    return {**clean, "OAKID_SECRET": "s" * 32}


def serving(args: list[str], env: dict[str, str], url: str, cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read().decode()[-2000:] if process.stderr else ""
            try:
                if httpx.get(url, trust_env=False, timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{url} did not answer"
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()


def test_version_and_no_extras(plain: Path) -> None:
    out = subprocess.run([str(plain / "oakid-gate"), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("oakid-gate ")
    modules = subprocess.run(
        [str(plain / "python"), "-c", "import importlib.util as u;"
         "print([m for m in ('redis', 'prometheus_client', 'flask', 'pytest') if u.find_spec(m)])"],
        capture_output=True, text=True, check=True,
    )
    assert modules.stdout.strip() == "[]"


def test_every_command_runs_from_a_plain_install(plain: Path, env: dict[str, str], tmp_path: Path) -> None:
    """dev-idp, then run and proxy against it, then demo: each answers."""
    gate = str(plain / "oakid-gate")
    idp_port, run_port, proxy_port, demo_port, demo_idp = (free_port() for _ in range(5))
    (tmp_path / "hello.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'hello'})\n"
    )
    idp_env = {**env, "OAKID_CLIENT_ID": "oak_plain", "OAKID_CLIENT_SECRET": "a-plain-install-client-secret"}
    idp_url = f"http://127.0.0.1:{idp_port}"
    for _ in serving([gate, "dev-idp", "--port", str(idp_port)], idp_env, f"{idp_url}/.well-known/openid-configuration", tmp_path):
        gate_env = {**idp_env, "OAKID_ISSUER": idp_url, "PYTHONPATH": str(tmp_path)}
        run_env = {**gate_env, "OAKID_PORT": str(run_port)}
        for _ in serving([gate, "run", "hello:app"], run_env, f"http://127.0.0.1:{run_port}/oauth2/ready", tmp_path):
            protected = httpx.get(f"http://127.0.0.1:{run_port}/", headers={"accept": "text/html"}, trust_env=False)
            assert protected.status_code == 302 and protected.headers["location"].startswith(idp_url)
        proxy_env = {**gate_env, "OAKID_PORT": str(proxy_port), "OAKID_UPSTREAM": f"http://127.0.0.1:{run_port}"}
        for _ in serving([gate, "proxy"], proxy_env, f"http://127.0.0.1:{proxy_port}/oauth2/ready", tmp_path):
            pass
    demo_args = [gate, "demo", "--port", str(demo_port), "--idp-port", str(demo_idp)]
    for _ in serving(demo_args, env, f"http://127.0.0.1:{demo_port}/oauth2/ping", tmp_path):
        page = httpx.get(f"http://127.0.0.1:{demo_port}/", headers={"accept": "text/html"}, trust_env=False)
        assert page.status_code == 302
