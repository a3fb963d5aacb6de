"""Logging that never holds a secret: servers' access logs with codes and tokens redacted.

A server's access log writes every request line, and the gate's callback URL
carries the authorization ``code`` and ``state``. :class:`RedactSecrets`
replaces the values of ``code``, ``state`` and token parameters in a logged
request line, for uvicorn's records (a tuple of arguments) and gunicorn's (a
mapping of atoms) alike. It is put on the access loggers twice over:

- :func:`uvicorn_log_config` is uvicorn's own logging configuration with the
  filter on its access logger, passed to uvicorn by the commands (worker
  processes get it too);
- :func:`protect_access_logs` adds it to ``uvicorn.access`` and
  ``gunicorn.access`` when a middleware is built, for apps served by a server
  of the user's own (``uvicorn app:app``, gunicorn).
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ACCESS_LOGGERS",
    "RedactSecrets",
    "protect_access_logs",
    "redact_url",
    "uvicorn_log_config",
]

#: the access loggers of the servers the gate runs under
ACCESS_LOGGERS = ("uvicorn.access", "gunicorn.access")

_SECRET_PARAMS = re.compile(
    r"((?:^|[?&])(?:code|state|access_token|id_token|refresh_token|token)=)[^&#\s]*",
    re.IGNORECASE,
)


def redact_url(path: str) -> str:
    """``path`` with the values of secret-bearing query parameters replaced."""
    return _SECRET_PARAMS.sub(r"\1[redacted]", path)


class RedactSecrets(logging.Filter):
    """Redact secret query parameters in access log records (uvicorn's, gunicorn's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_redacted(a) for a in args)
        elif isinstance(args, Mapping):
            record.args = {k: _redacted(v) for k, v in args.items()}
        return True


def _redacted(value: object) -> object:
    # only a query (or a request line holding one) can hold a secret
    return redact_url(value) if isinstance(value, str) and "=" in value else value


def protect_access_logs() -> None:
    """Add :class:`RedactSecrets` to the servers' access loggers (once each)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration, its access log redacted."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": "oakid_gate.logs.RedactSecrets"}
    config["loggers"]["uvicorn.access"].setdefault("filters", []).append("redact_secrets")
    return config
