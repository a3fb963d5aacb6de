"""The proxy relay's tests (a package: its conftest is its own)."""
