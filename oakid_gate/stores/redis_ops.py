"""The redis store's operations, each written once as a value: the one command it sends
and how its reply is read (:class:`Op`).

:class:`~oakid_gate.stores.redis.RedisStore` sends each with ``redis.Redis``
(WSGI) or ``redis.asyncio.Redis`` (ASGI). Operations that must touch several
keys at once are one Lua script (``EVAL``), so every operation stays one
command and one round trip.

Replies come through redis-py's ``execute_command``, so its reply callbacks
apply by command name, as they do for its methods: SET gives True ("OK") or
None (NX and the key exists), PING gives True; GET, DEL and EVAL give the raw
reply (bytes, None, an integer, a list).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..gate.records import Session
from .codec import SessionCodec

__all__ = [
    "END_LINKED",
    "LINK_PREFIX",
    "LINK_SESSION",
    "LOCK_PREFIX",
    "PEEK_SESSION",
    "PING",
    "RELEASE_LOCK",
    "SESSION_PREFIX",
    "UPDATE_SESSION",
    "Command",
    "Op",
    "acquire_lock",
    "delete_counted",
    "delete_session",
    "end_linked",
    "get_session",
    "link_session",
    "linked",
    "peek_session",
    "put_session",
    "release_lock",
    "unlink",
    "update_session",
]

SESSION_PREFIX = "oakid:s:"
LOCK_PREFIX = "oakid:k:"
LINK_PREFIX = "oakid:x:"

#: add ARGV[1] to the set KEYS[1], which lives ARGV[2] ms at least
LINK_SESSION = """\
redis.call("SADD", KEYS[1], ARGV[1])
if redis.call("PTTL", KEYS[1]) < tonumber(ARGV[2]) then
    redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 1
"""

#: delete every session in the set KEYS[1] (ARGV[1] the session prefix), then the set;
#: the session keys deleted, for the near cache
END_LINKED = """\
local keys = redis.call("SMEMBERS", KEYS[1])
local ended = {}
for _, key in ipairs(keys) do
    if redis.call("DEL", ARGV[1] .. key) == 1 then
        table.insert(ended, key)
    end
end
redis.call("DEL", KEYS[1])
return ended
"""

#: delete the lock only if it still holds this owner's value
RELEASE_LOCK = """\
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
end
return 0
"""

#: compare and set: write ARGV[2] for ARGV[3] ms only over a record of version ARGV[1]
#: (its clear 8-byte prefix, :mod:`oakid_gate.stores.codec`); a deleted or expired
#: record is never written back
UPDATE_SESSION = """\
local current = redis.call("GET", KEYS[1])
if not current or string.sub(current, 1, 8) ~= ARGV[1] then
    return 0
end
redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3])
return 1
"""

#: the session and the milliseconds redis keeps it (PTTL: -2 absent, -1 for ever)
PEEK_SESSION = 'return {redis.call("GET", KEYS[1]), redis.call("PTTL", KEYS[1])}'

T = TypeVar("T")
#: a redis command as sent, ``("SET", key, value, "PX", 60000)``
Command = tuple[str | bytes | int, ...]


@dataclass(frozen=True, slots=True)
class Op(Generic[T]):
    """One store operation: the command to send, what its reply means, and the session key
    it changes (which the store invalidates in its near cache once it was sent)."""

    command: Command
    read: Callable[[object], T]
    changes: str | None = None


def _nothing(reply: object) -> None:
    return None


def _millis(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def get_session(codec: SessionCodec, key: str) -> Op[Session | None]:
    def read(blob: object) -> Session | None:
        return None if blob is None else codec.decode_session(key, _bytes(blob))

    return Op(("GET", SESSION_PREFIX + key), read)


def peek_session(
    codec: SessionCodec, key: str, keep: Callable[[Session | None, float | None], None]
) -> Op[Session | None]:
    """The hot path's read on a near-cache miss: the session, handed to ``keep`` with the
    seconds redis keeps it (counted from before the command was sent: never too long)."""
    sent = time.monotonic()

    def read(reply: object) -> Session | None:
        blob, pttl = reply if isinstance(reply, list) and len(reply) == 2 else (None, -2)
        session = None if blob is None else codec.decode_session(key, _bytes(blob))
        left = pttl / 1000 - (time.monotonic() - sent) if isinstance(pttl, int) else -1.0
        keep(session, None if pttl == -1 else left)
        return session

    return Op(("EVAL", PEEK_SESSION, 1, SESSION_PREFIX + key), read)


def put_session(codec: SessionCodec, key: str, session: Session, ttl: float) -> Op[None]:
    blob = codec.encode_session(key, session)
    return Op(("SET", SESSION_PREFIX + key, blob, "PX", _millis(ttl)), _nothing, key)


def update_session(
    codec: SessionCodec, key: str, session: Session, ttl: float, expected: int
) -> Op[bool]:
    blob = codec.encode_session(key, session)
    tag = codec.version_tag(expected)
    command = ("EVAL", UPDATE_SESSION, 1, SESSION_PREFIX + key, tag, blob, _millis(ttl))
    return Op(command, bool, key)


def link_session(index: str, key: str, ttl: float) -> Op[None]:
    return Op(("EVAL", LINK_SESSION, 1, LINK_PREFIX + index, key, _millis(ttl)), _nothing)


def end_linked(index: str) -> Op[list[str]]:
    def read(reply: object) -> list[str]:
        items = reply if isinstance(reply, list) else []
        return [_bytes(k).decode() for k in items]

    return Op(("EVAL", END_LINKED, 1, LINK_PREFIX + index, SESSION_PREFIX), read)


def linked(index: str) -> Op[list[str]]:
    """The sessions linked to ``index`` (``SMEMBERS``; Redis Cluster's end_linked)."""

    def read(reply: object) -> list[str]:
        items = reply if isinstance(reply, (list, set)) else []
        return sorted(_bytes(k).decode() for k in items)

    return Op(("SMEMBERS", LINK_PREFIX + index), read)


def delete_counted(key: str) -> Op[int]:
    """Delete one session; 1 if it was there."""
    return Op(("DEL", SESSION_PREFIX + key), lambda reply: int(reply == 1), key)


def unlink(index: str) -> Op[None]:
    return Op(("DEL", LINK_PREFIX + index), _nothing)


def delete_session(key: str) -> Op[None]:
    return Op(("DEL", SESSION_PREFIX + key), _nothing, key)


def acquire_lock(key: str, owner: str, ttl: float) -> Op[bool]:
    return Op(("SET", LOCK_PREFIX + key, owner, "NX", "PX", _millis(ttl)), bool)


def release_lock(key: str, owner: str) -> Op[None]:
    return Op(("EVAL", RELEASE_LOCK, 1, LOCK_PREFIX + key, owner), _nothing)


PING: Op[None] = Op(("PING",), _nothing)
