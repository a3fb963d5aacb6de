"""Logging that never holds a secret: uvicorn's access log with codes and tokens redacted.

uvicorn logs every request line, and the gate's callback URL carries the
authorization ``code`` and ``state``. :func:`uvicorn_log_config` is uvicorn's
own logging configuration with one filter added to the access handler, which
replaces the values of ``code``, ``state`` and token parameters in the logged
path. It is passed to uvicorn as configuration, so worker processes get it too.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

__all__ = ["RedactSecrets", "redact_url", "uvicorn_log_config"]

_SECRET_PARAMS = re.compile(
    r"([?&](?:code|state|access_token|id_token|refresh_token|token)=)[^&#\s]*", re.IGNORECASE
)


def redact_url(path: str) -> str:
    """``path`` with the values of secret-bearing query parameters replaced."""
    return _SECRET_PARAMS.sub(r"\1[redacted]", path)


class RedactSecrets(logging.Filter):
    """Redact secret query parameters in uvicorn's access log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3:
            path = args[2]
            if isinstance(path, str) and "=" in path:  # only a query can hold a secret
                record.args = (*args[:2], redact_url(path), *args[3:])
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration, its access log redacted."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": "oakid_gate.logs.RedactSecrets"}
    config["handlers"]["access"].setdefault("filters", []).append("redact_secrets")
    return config
