"""The examples' own tests: what a user of oakid-gate writes for an app behind it.

They use nothing but ``oakid_gate.testing`` (and its pytest plugin's fixtures):
no provider, no network. The examples read their settings from ``OAKID_*``
variables when imported, so :func:`load_example` sets oakid_gate.testing's
offline settings there first and imports the example afresh.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from oakid_gate.testing import offline_settings

ROOT = Path(__file__).resolve().parents[2]  # the checkout, where ``examples`` is


@pytest.fixture
def load_example(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """``load_example("fastapi_app")``: the example module, imported under offline settings."""
    monkeypatch.syspath_prepend(str(ROOT))

    def load(name: str) -> ModuleType:
        for key, value in offline_settings().items():
            monkeypatch.setenv(f"OAKID_{key.upper()}", str(value))
        sys.modules.pop(f"examples.{name}", None)
        return importlib.import_module(f"examples.{name}")

    return load
