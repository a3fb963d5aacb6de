"""The proxy's relay meets two event loops, asyncio's and uvloop's: its tests run on both.

(A folder of its own: pytest-asyncio asks this hook about every test below it.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    loops: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:  # not on Windows or PyPy
        return loops
    loops["uvloop"] = uvloop.new_event_loop
    return loops
