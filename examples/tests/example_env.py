"""The examples' own tests: what a user of oakid-gate writes for an app behind it.

They use nothing but ``oakid_gate.testing`` (and its pytest plugin's fixtures):
no provider, no network. The examples read their settings from ``OAKID_*``
variables when imported, so :func:`load_example` sets oakid_gate.testing's
offline settings there first and imports the example afresh. (A module of its
own, not a ``conftest.py``: the suite under ``tests/`` imports its conftest by
that name.)
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

from oakid_gate.testing import offline_settings

ROOT = Path(__file__).resolve().parents[2]  # the checkout, where ``examples`` is


def load_example(monkeypatch: pytest.MonkeyPatch, name: str) -> ModuleType:
    """``load_example(monkeypatch, "fastapi_app")``: the example module, imported under
    offline settings (undone with ``monkeypatch`` after the test)."""
    monkeypatch.syspath_prepend(str(ROOT))
    for key, value in offline_settings().items():
        monkeypatch.setenv(f"OAKID_{key.upper()}", str(value))
    sys.modules.pop(f"examples.{name}", None)
    return importlib.import_module(f"examples.{name}")
