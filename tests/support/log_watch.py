"""Every log line of the test session, and the secrets the session handed out.

The suite's last test (tests/test_logs.py) reads both and finds no secret in
any line: the records every logger emitted in this process (captured from the
session's first test), and every ``*.log`` file that the session's processes
wrote under its temporary directory (gates, providers, servers).
"""

from __future__ import annotations

import logging
import threading

__all__ = ["RECORDS", "SECRETS", "install", "remember"]

#: every formatted record this process logged during the session
RECORDS: list[str] = []
#: exact values that must never appear (codes, tokens, verifiers, client secrets)
SECRETS: set[str] = set()
_lock = threading.Lock()


class _Capture(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = f"{record.name} {record.levelname} {record.getMessage()}"
            if record.exc_info:
                line += "\n" + logging.Formatter().formatException(record.exc_info)
        except Exception:  # a record that cannot be formatted says nothing
            return
        with _lock:
            RECORDS.append(line)


#: the loggers of the gate and of the servers its commands run
LOGGERS = ("oakid_gate", "uvicorn", "uvicorn.access", "uvicorn.error", "gunicorn", "daphne")


def install() -> None:
    """Capture every record of the gate's loggers from now on (``oakid_gate`` at DEBUG)."""
    handler = _Capture(logging.DEBUG)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, _Capture) for h in logger.handlers):
            logger.addHandler(handler)
    logging.getLogger("oakid_gate").setLevel(logging.DEBUG)


def remember(*values: str) -> None:
    """Secrets a provider double or a test handed out, to look for in every line."""
    with _lock:
        SECRETS.update(v for v in values if v and len(v) >= 12)
