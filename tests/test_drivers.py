"""The drivers: one loop, run sync or async, and the same failure mapping in both."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from oakid_gate.drivers import run_async, run_sync
from oakid_gate.errors import ProviderUnavailable, StoreUnavailable
from oakid_gate.gate.effects import GetSession, Program, Sleep, perform


def _catching(effect: Any) -> Program[str]:
    """Yield ``effect`` once; return the name of what was thrown back, or ``"ok"``."""
    try:
        yield effect
    except Exception as exc:
        return type(exc).__name__
    return "ok"


async def _both(program_factory: Any, perform_: Any) -> list[Any]:
    """Run a program through both loops with the same performer; both results."""

    async def aperform(effect: Any) -> Any:
        return perform_(effect)

    results: list[Any] = [run_sync(program_factory(), perform_)]
    results.append(await run_async(program_factory(), aperform))
    return results


def _raise(exc: Exception) -> Any:
    def perform_(effect: Any) -> Any:
        raise exc

    return perform_


@pytest.mark.parametrize(
    ("effect", "failure", "thrown"),
    [
        pytest.param(GetSession("k"), RuntimeError("redis said no"), "StoreUnavailable", id="store-failure"),
        pytest.param(GetSession("k"), StoreUnavailable("down"), "StoreUnavailable", id="store-unavailable"),
        pytest.param(
            httpx.Request("GET", "https://id.test/"),
            httpx.ConnectError("refused"),
            "ProviderUnavailable",
            id="provider-unreachable",
        ),
        pytest.param(
            httpx.Request("GET", "https://id.test/"),
            ProviderUnavailable("slow"),
            "ProviderUnavailable",
            id="provider-timeout",
        ),
    ],
)
async def test_failures_are_thrown_back_as_the_cores_errors(
    effect: Any, failure: Exception, thrown: str
) -> None:
    """A failed effect reaches the program as the core's error, in both loops alike."""
    assert await _both(lambda: _catching(effect), _raise(failure)) == [thrown, thrown]


async def test_an_unforeseen_failure_is_not_hidden() -> None:
    """An error that is neither the store's nor the provider's propagates out of the loop."""
    with pytest.raises(ZeroDivisionError):
        run_sync(_catching(Sleep(0)), _raise(ZeroDivisionError()))


async def test_results_are_sent_back_typed() -> None:
    """``perform`` returns what the performer answered, in both loops."""

    def program() -> Program[Any]:
        session = yield from perform(GetSession("k"))
        return session

    assert await _both(program, lambda effect: ("answered", effect.key)) == [
        ("answered", "k"),
        ("answered", "k"),
    ]
