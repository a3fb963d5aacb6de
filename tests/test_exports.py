"""The public API is what ``__all__`` says: every public name exported, every
exported name defined (both directions, as httpx's ``test_exported_members``)."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import oakid_gate

#: every module of the package, by walking it
ALL_MODULES = sorted(
    {"oakid_gate"}
    | {m.name for m in pkgutil.walk_packages(oakid_gate.__path__, "oakid_gate.")}
)

#: the public API, as users rely on it (SPEC.md)
TOP_LEVEL_API = [
    "AccessDenied",
    "AuthenticationError",
    "ConfigurationError",
    "OakIDGateError",
    "OakIDAnonymousUser",
    "OakIDMiddleware",
    "OakIDUser",
    "OakIDWSGIMiddleware",
    "ProviderError",
    "ProviderUnavailable",
    "SessionView",
    "Settings",
    "StoreUnavailable",
    "__version__",
    "protect",
]


def _import(name: str) -> types.ModuleType:
    """The module ``name``; the Django app's (its model, admin, migrations) need Django
    configured first (:mod:`support.django_project`)."""
    if name.startswith("oakid_gate.django."):
        from support.django_project import configure

        configure()
    return importlib.import_module(name)


@pytest.mark.parametrize("name", ALL_MODULES)
def test_all_names_exist(name: str) -> None:
    """Every name a module exports is defined."""
    module = _import(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        assert name.endswith("__main__"), f"{name} has no __all__"
        return
    for item in exported:
        assert hasattr(module, item), f"{name}.{item}"


def test_the_package_exports_every_public_name() -> None:
    """The package's namespace holds no public name outside ``__all__``
    (submodules and ``from __future__`` features aside)."""
    public = {
        member
        for member, value in vars(oakid_gate).items()
        if not member.startswith("_")
        and not isinstance(value, types.ModuleType)
        and member != "annotations"
    }
    assert public == set(oakid_gate.__all__) - {"__version__"}


@pytest.mark.parametrize("name", ALL_MODULES)
def test_every_public_class_and_function_is_exported(name: str) -> None:
    """Each public class and function a module defines is in its ``__all__``."""
    module = _import(name)
    defined = {
        member
        for member, value in vars(module).items()
        if not member.startswith("_")
        and isinstance(value, (type, types.FunctionType))
        and value.__module__ == name
    }
    missing = defined - set(getattr(module, "__all__", ()))
    assert not missing, f"{name} defines {sorted(missing)} but does not export them"


def test_top_level_api() -> None:
    """The top-level package exports exactly the documented API."""
    assert sorted(oakid_gate.__all__) == sorted(TOP_LEVEL_API)
