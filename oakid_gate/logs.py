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
import datetime
import json
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ACCESS_LOGGERS",
    "JSONFormatter",
    "RedactSecrets",
    "TextFormatter",
    "configure",
    "gunicorn_logger_class",
    "log_format",
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
    """uvicorn's default logging configuration, its access log redacted; with
    ``OAKID_LOG_FORMAT=json`` every line JSON, and the gate's own logger through it too
    (a worker process that uvicorn spawns configures its logging from this alone)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": "oakid_gate.logs.RedactSecrets"}
    config["loggers"]["uvicorn.access"].setdefault("filters", []).append("redact_secrets")
    formatter = (
        "oakid_gate.logs.JSONFormatter"
        if log_format() == "json"
        else "oakid_gate.logs.TextFormatter"
    )
    config["formatters"]["oakid"] = {"()": formatter}
    if log_format() == "json":
        for name in ("default", "access"):
            config["handlers"][name]["formatter"] = "oakid"
    config["handlers"]["oakid"] = {
        "formatter": "oakid",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["oakid_gate"] = {"handlers": ["oakid"], "level": "INFO", "propagate": False}
    return config


def gunicorn_logger_class() -> Any:
    """gunicorn's ``logger_class``: its own, or under ``OAKID_LOG_FORMAT=json`` one whose
    error and access lines are JSON too (set up in each worker as in the arbiter)."""
    if log_format() != "json":
        return "gunicorn.glogging.Logger"
    from gunicorn.glogging import Logger  # type: ignore[import-untyped]

    class JSONLogger(Logger):  # type: ignore[misc]
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    handler.setFormatter(JSONFormatter())

    return JSONLogger


# ---------------------------------------------------------------- formats

#: the fields an audit event carries (:mod:`oakid_gate.gate.audit`), in this order
EVENT_FIELDS = ("event", "outcome", "reason", "sub", "session", "client", "request_id")


def log_format() -> str:
    """``text`` or ``json``: ``OAKID_LOG_FORMAT`` (the commands set it from
    ``--log-format``, so that worker processes inherit it)."""
    value = os.environ.get("OAKID_LOG_FORMAT", "text").strip().lower() or "text"
    return value if value in ("text", "json") else "text"


class TextFormatter(logging.Formatter):
    """``time level logger: message``, then an audit event's fields as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields: dict[str, Any] | None = getattr(record, "oakid", None)
        if fields:
            line += " " + " ".join(
                f"{k}={fields[k]}" for k in EVENT_FIELDS if fields.get(k) is not None
            )
        return line


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, and an
    audit event's fixed fields (``event``, ``outcome``, ``reason``, ``sub``,
    ``session``, ``client``, ``request_id``); an exception as its type and traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(
                record.created, datetime.timezone.utc
            ).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields: dict[str, Any] | None = getattr(record, "oakid", None)
        if fields:
            entry.update((k, fields[k]) for k in EVENT_FIELDS if fields.get(k) is not None)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str, fmt: str) -> None:
    """The commands' logging: ``fmt`` (``text`` or ``json``) on stderr, at ``level``;
    ``OAKID_LOG_FORMAT`` set for the worker processes."""
    if fmt not in ("text", "json"):
        from .errors import ConfigurationError

        raise ConfigurationError("log_format", "must be text or json")
    os.environ["OAKID_LOG_FORMAT"] = fmt
    handler = logging.StreamHandler()
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
