"""The public API is what ``__all__`` says, and every name in it exists."""

from __future__ import annotations

import importlib

import pytest

import oakid_gate

MODULES = [
    "oakid_gate",
    "oakid_gate.asgi",
    "oakid_gate.wsgi",
    "oakid_gate.serve",
    "oakid_gate.flask",
    "oakid_gate.errors",
    "oakid_gate.flows",
    "oakid_gate.gate",
    "oakid_gate.idtoken",
    "oakid_gate.proxy",
    "oakid_gate.metadata",
    "oakid_gate.redirects",
    "oakid_gate.settings",
    "oakid_gate.stores",
    "oakid_gate.user",
    "oakid_gate.devidp",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    """Every name a public module exports is defined."""
    module = importlib.import_module(name)
    for item in module.__all__:
        assert hasattr(module, item), f"{name}.{item}"


def test_top_level_api() -> None:
    """The top-level package re-exports the middleware, settings, user and errors."""
    for name in (
        "OakIDMiddleware",
        "OakIDWSGIMiddleware",
        "protect",
        "Settings",
        "OakIDUser",
        "SessionView",
        "ConfigurationError",
    ):
        assert name in oakid_gate.__all__
