"""Spies on the gate under test."""

from __future__ import annotations

from typing import Any

import pytest

__all__ = ["full_path_calls"]


def full_path_calls(middleware: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of every request that ran the full program (``Gate.handle``) from now on:
    empty while requests take the hot path."""
    calls: list[str] = []
    handle = middleware.gate.handle

    def counting(req: Any, now: float, random: Any) -> Any:
        calls.append(req.path)
        return handle(req, now, random)

    monkeypatch.setattr(middleware.gate, "handle", counting)
    return calls
