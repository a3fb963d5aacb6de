"""Names of a package that load with their first use (PEP 562).

:mod:`oakid_gate.testing` (loaded by pytest's plugin in every suite) and
:mod:`oakid_gate.proxy` (read by the ``oakid-gate`` command for its help) import
their modules only when one of their names is asked for::

    __getattr__, __dir__ = lazy_names(__name__, {"ProxyApp": "app", ...}, __all__)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(
    package: str, modules: Mapping[str, str], exported: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: each name of ``modules`` is
    imported from its submodule when first asked for, then kept in the package."""

    def __getattr__(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exported})

    return __getattr__, __dir__
