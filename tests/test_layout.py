"""The shape of the package stays as ARCHITECTURE.md draws it.

The import layering itself is import-linter's contract (``make lint``); these
are the rules it cannot express.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "oakid_gate"
MODULES = sorted(PACKAGE.rglob("*.py"))
CORE = sorted((PACKAGE / "gate").glob("*.py"))

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _name(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_module_is_too_long(path: Path) -> None:
    """Every module holds one rule, in at most 400 lines."""
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_function_is_too_long(path: Path) -> None:
    """Every function fits on a screen: under 60 lines."""
    tree = ast.parse(path.read_text())
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 >= MAX_FUNCTION_LINES
    ]
    assert not long


@pytest.mark.parametrize("path", CORE, ids=_name)
def test_the_core_uses_httpx_models_only(path: Path) -> None:
    """The core builds ``httpx.Request`` values and reads responses; it never holds a client."""
    tree = ast.parse(path.read_text())
    clients = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "httpx"
        and node.attr not in ("Request", "Response", "URL", "Headers")
    ]
    assert not clients


#: what loads at the first sign-in or first use, never at start-up (issue 8: start-up
#: within 1.3 x bare uvicorn's): the provider's HTTP client, JOSE and its crypto,
#: Authlib, the shared stores' drivers, WebSockets to an upstream, the dev IdP
LOADED_ON_FIRST_USE = (
    "httpx",
    "joserfc",
    "cryptography",
    "authlib",
    "redis",
    "sqlite3",
    "oakid_gate.devidp",
    "oakid_gate.proxy.websocket",
    "oakid_gate.stores.codec",
)


def test_start_up_loads_nothing_it_does_not_need_yet() -> None:
    """``import oakid_gate`` and the CLI up to serving leave the heavy imports for later."""
    code = (
        "import sys, oakid_gate, oakid_gate.cli, oakid_gate.cli.run\n"
        "from oakid_gate.proxy import ProxyApp\n"
        "from oakid_gate.stores import open_store\n"
        "open_store('memory://', [])\n"
        f"print(' '.join(m for m in {LOADED_ON_FIRST_USE!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []
