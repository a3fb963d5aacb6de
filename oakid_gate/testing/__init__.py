"""Testing an app behind oakid-gate without a provider.

See README, "Testing your app".
"""

from __future__ import annotations

from .sessions import TEST_ACCESS_TOKEN, session_cookie

__all__ = ["TEST_ACCESS_TOKEN", "session_cookie"]
