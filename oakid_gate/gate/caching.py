"""Which protected responses get ``protected_cache_control``: those a browser keeps.

The header is there so that after sign-out the back button, or the next person
at a shared computer, finds nothing protected in the browser's cache. A
browser is known by what every browser sends with every request: a
``Sec-Fetch-Mode`` header (all current browsers, for documents, scripts,
images and ``fetch`` alike) or, from a browser too old to send it, a
``User-Agent`` that begins ``Mozilla/`` (every browser's). A client that sends
neither (``curl``, an API client, a monitoring probe, another service) has no
back button and no cache of its own to clear, so its responses are left as
the app made them; a response to a request with ``Authorization`` is never
stored by a shared cache anyway (RFC 9111, 3.5).

One rule for the three adapters (ASGI, WSGI, Django), which read the two
headers each in their own form (bytes or text).
"""

from __future__ import annotations

__all__ = ["from_browser"]


def from_browser(fetch_mode: bytes | str | None, user_agent: bytes | str | None) -> bool:
    """Whether a request with these ``Sec-Fetch-Mode`` and ``User-Agent`` values (``None``:
    absent) comes from a browser, whose protected responses get ``protected_cache_control``."""
    if fetch_mode is not None:
        return True
    if user_agent is None:
        return False
    if isinstance(user_agent, bytes):
        return user_agent.startswith(b"Mozilla/")
    return user_agent.startswith("Mozilla/")
