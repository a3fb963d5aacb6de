"""The README stays true to the code."""

from __future__ import annotations

from pathlib import Path

from oakid_gate.settings import setting_fields

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    """Each setting appears in the README's settings table."""
    missing = [f.name for f in setting_fields() if f"`{f.name}`" not in README]
    assert not missing, f"settings missing from README: {missing}"


def test_readme_names_the_two_commands() -> None:
    """The README gives the two commands a new machine needs."""
    assert "make demo" in README and "make test" in README
