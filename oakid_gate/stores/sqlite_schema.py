"""The sqlite store's file and schema: created private, in WAL mode, brought up to date.

Schema versions (``PRAGMA user_version``): 1 sessions, sign-ins and locks; 2 no
``logins`` table (sign-ins under way travel sealed in their cookie); 3 ``links``
(sessions by provider session and user, for back-channel logout). A file of a
newer version than this oakid-gate knows is refused.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Final

__all__ = ["SCHEMA_VERSION", "create_private_file", "create_schema", "with_wal"]

log = logging.getLogger("oakid_gate")

SCHEMA_VERSION: Final = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    key TEXT PRIMARY KEY, value BLOB NOT NULL, expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS links (
    index_key TEXT NOT NULL, session_key TEXT NOT NULL, expires_at REAL NOT NULL,
    PRIMARY KEY (index_key, session_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS links_expires_at ON links (expires_at);
CREATE TABLE IF NOT EXISTS locks (
    key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at);
DROP TABLE IF EXISTS logins;
CREATE INDEX IF NOT EXISTS locks_expires_at ON locks (expires_at);
"""


def create_private_file(path: Path) -> None:
    """Create the file 0600 before sqlite does (it would honour the umask)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        mode = os.fstat(fd).st_mode
    finally:
        os.close(fd)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "session store: %s is readable by other users (mode %o); chmod 600 it",
            path,
            stat.S_IMODE(mode),
        )


def with_wal(conn: sqlite3.Connection, path: Path, timeout: float) -> None:
    """WAL journal mode. Several processes may start at once: switching needs a moment
    alone with the file, so a busy answer is retried within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            break
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    if str(mode).lower() != "wal":
        log.warning("session store: %s is not in WAL mode (%s)", path, mode)


def create_schema(conn: sqlite3.Connection) -> None:
    """Inside a transaction: the tables, at :data:`SCHEMA_VERSION`."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(f"schema version {version} is newer than this oakid-gate knows")
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
