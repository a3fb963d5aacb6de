"""At rest: a copy of a store yields no token, no claim and no usable cookie.

For ``sqlite://`` and ``redis://``: sessions and sign-ins are stored with known
values, then the raw store is dumped (the sqlite file and its WAL, every row
of every table; every redis key, its ``DUMP`` and its value) and searched for
them. Then the sealing itself: the store key is the hash of the session id,
records opened with rotated secrets, altered records, records moved under
another key.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from oakid_gate.gate import sealing
from oakid_gate.gate.records import Session, hash_key
from oakid_gate.stores import SessionCodec, SessionStore, open_store
from oakid_gate.stores import codec as codec_module

SECRET_A = "secret-A-" + "a" * 32
SECRET_B = "secret-B-" + "b" * 32
KINDS = {"session": ("sessions", "oakid:s:")}


def unique(label: str) -> str:
    return f"{label}-{secrets.token_urlsafe(16)}"


class Known:
    """A session whose every secret value is unique and known."""

    def __init__(self) -> None:
        self.sid = unique("sid")  # the cookie's value
        self.access_token = unique("at")
        self.refresh_token = unique("rt")
        self.email = unique("mail") + "@example.test"
        self.name = unique("Ærøskøbing")
        self.sub = unique("sub")
        now = time.time()
        self.session = Session(
            claims={"sub": self.sub, "email": self.email, "name": self.name},
            access_token=self.access_token,
            refresh_token=self.refresh_token,
            expires_at=now + 3600,
            refresh_at=now + 3570,
            scopes=("openid", "email"),
            created_at=now,
            last_seen=now,
            claims_at=now,
        )

    @property
    def key(self) -> str:
        return hash_key(self.sid)

    def in_clear(self) -> list[str]:
        return [
            self.sid, self.access_token, self.refresh_token, self.email, self.name, self.sub,
        ]  # fmt: skip


class Raw:
    """The raw contents of one persistent store, below the store's own API."""

    url: str

    def dump(self) -> bytes:
        raise NotImplementedError

    def keys(self, kind: str) -> list[str]:
        raise NotImplementedError

    def get(self, kind: str, key: str) -> bytes:
        raise NotImplementedError

    def put(self, kind: str, key: str, value: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class SQLiteRaw(Raw):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, isolation_level=None)

    def dump(self) -> bytes:
        """Every byte of the files (database, WAL, shared memory), then every row."""
        out = bytearray()
        for file in sorted(self.path.parent.glob(self.path.name + "*")):
            out += file.read_bytes()
        conn = self._connect()
        try:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            assert set(tables) >= {"sessions", "locks"}
            for table in tables:
                for row in conn.execute(f"SELECT * FROM {table}"):
                    for value in row:
                        out += value if isinstance(value, bytes) else str(value).encode()
        finally:
            conn.close()
        return bytes(out)

    def keys(self, kind: str) -> list[str]:
        conn = self._connect()
        try:
            return [r[0] for r in conn.execute(f"SELECT key FROM {KINDS[kind][0]}")]
        finally:
            conn.close()

    def get(self, kind: str, key: str) -> bytes:
        conn = self._connect()
        try:
            row = conn.execute(f"SELECT value FROM {KINDS[kind][0]} WHERE key = ?", (key,))
            value: bytes = row.fetchone()[0]
            return value
        finally:
            conn.close()

    def put(self, kind: str, key: str, value: bytes) -> None:
        conn = self._connect()
        try:
            conn.execute(
                f"INSERT OR REPLACE INTO {KINDS[kind][0]} (key, value, expires_at) VALUES (?, ?, ?)",
                (key, value, time.time() + 600),
            )
        finally:
            conn.close()


class RedisRaw(Raw):
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(url)

    def dump(self) -> bytes:
        """Every key's name, its serialized form (DUMP) and its value."""
        out = bytearray()
        for name in self.client.scan_iter("*"):
            out += name
            out += self.client.dump(name) or b""
            if self.client.type(name) == b"string":
                out += self.client.get(name) or b""
        return bytes(out)

    def keys(self, kind: str) -> list[str]:
        prefix = KINDS[kind][1]
        return [k.decode()[len(prefix) :] for k in self.client.scan_iter(prefix + "*")]

    def get(self, kind: str, key: str) -> bytes:
        value = self.client.get(KINDS[kind][1] + key)
        assert isinstance(value, bytes)
        return value

    def put(self, kind: str, key: str, value: bytes) -> None:
        self.client.set(KINDS[kind][1] + key, value, px=600_000)

    def close(self) -> None:
        self.client.close()


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.e2e)])
def raw(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Raw]:
    if request.param == "sqlite":
        r: Raw = SQLiteRaw(tmp_path / "sessions.db")
    else:
        r = RedisRaw(request.getfixturevalue("redis_url"))
    yield r
    r.close()


@pytest.fixture
async def stores(raw: Raw) -> AsyncIterator[Any]:
    """Open stores on ``raw``'s data with the given secrets; all closed at the end."""
    opened: list[SessionStore] = []

    def open_(*secrets_: str) -> SessionStore:
        store = open_store(raw.url, secrets_ or (SECRET_A,))
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.aclose()


# ---------------------------------------------------------------- dumps


async def test_dump_holds_no_token_claim_or_cookie(raw: Raw, stores: Any) -> None:
    """A full dump of the store holds none of the tokens, claims or cookie values."""
    store = stores()
    known = [Known() for _ in range(3)]
    for k in known:
        store.put_session(k.key, k.session, 600)
        await store.aput_session(hash_key(k.sid + "-async"), k.session, 600)
        assert store.acquire_lock(k.key, "lock-owner", 600)
    dump = raw.dump()
    assert len(dump) > 0
    for k in known:
        for value in k.in_clear():
            assert value.encode() not in dump, value
        assert k.key.encode() in dump  # the hash is there; the id it hashes is not
    # ... and the store still reads what it sealed.
    assert store.get_session(known[0].key) == known[0].session


async def test_store_key_is_the_hash_of_the_session_id(raw: Raw, stores: Any) -> None:
    """Sessions are filed under the hash the gate gives (never the session id itself)."""
    store = stores()
    k = Known()
    store.put_session(k.key, k.session, 600)
    assert raw.keys("session") == [hash_key(k.sid)]


# ---------------------------------------------------------------- rotation


async def test_secret_rotation(raw: Raw, stores: Any) -> None:
    """Written with A: read by (B, A), not by (B,). Written by (B, A): sealed with B."""
    k = Known()
    stores(SECRET_A).put_session(k.key, k.session, 600)
    assert stores(SECRET_B, SECRET_A).get_session(k.key) == k.session
    assert stores(SECRET_B).get_session(k.key) is None
    # The rotated store writes with its first secret only.
    stores(SECRET_B, SECRET_A).put_session(k.key, k.session, 600)
    assert stores(SECRET_B).get_session(k.key) == k.session
    assert stores(SECRET_A).get_session(k.key) is None


# ---------------------------------------------------------------- altered records


async def test_tampered_record_reads_as_absent(
    raw: Raw, stores: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Any altered byte (session version, format, key id, nonce, ciphertext, tag) makes the
    record absent, with a warning that shows nothing of it."""
    store = stores()
    k = Known()
    store.put_session(k.key, k.session, 600)
    sealed = raw.get("session", k.key)
    v = codec_module.VERSION_BYTES
    header = v + 1 + sealing.KEY_ID_BYTES + sealing.NONCE_BYTES
    positions = {
        "session version": v - 1, "format": v, "key id": v + 1, "nonce": header - 1,
        "ciphertext": header + 3, "tag": len(sealed) - 1,
    }  # fmt: skip
    for where, position in positions.items():
        altered = bytearray(sealed)
        altered[position] ^= 0x01
        raw.put("session", k.key, bytes(altered))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="oakid_gate"):
            assert store.get_session(k.key) is None, where
            assert await store.aget_session(k.key) is None, where
        assert caplog.records, where
        logged = caplog.text
        for value in (*k.in_clear(), sealed.hex(), k.key):
            assert value not in logged
    for cut in (sealed[:10], sealed[:-1], b"", b"{}"):
        raw.put("session", k.key, cut)
        assert store.get_session(k.key) is None
    raw.put("session", k.key, sealed)
    assert store.get_session(k.key) == k.session  # the untouched record still opens


async def test_record_moved_to_another_key_reads_as_absent(raw: Raw, stores: Any) -> None:
    """The store key is bound to the record: a copy under another key does not open."""
    store = stores()
    victim, attacker = Known(), Known()
    store.put_session(victim.key, victim.session, 600)
    raw.put("session", attacker.key, raw.get("session", victim.key))
    assert store.get_session(attacker.key) is None
    assert store.get_session(victim.key) == victim.session


# ---------------------------------------------------------------- the codec alone


def test_codec_record_format() -> None:
    """The session's version in clear (8 bytes, for the store's compare-and-set), then the
    sealed JSON: format 1, a 4-byte key id, a fresh 96-bit nonce per record, a 16-byte tag."""
    codec = SessionCodec((SECRET_A,))
    k = Known()
    one = codec.encode_session(k.key, k.session)
    two = codec.encode_session(k.key, k.session)
    assert one[:8] == two[:8] == k.session.version.to_bytes(8, "big")
    assert one[8] == two[8] == 1
    assert one[9:13] == two[9:13]  # same secret, same key id
    assert one[13:25] != two[13:25]  # never the same nonce
    assert one != two
    plain = len(b'{"claims":')  # the JSON is sealed whole: the record is longer than the header+tag
    assert len(one) > 8 + 1 + 4 + 12 + 16 + plain
    assert codec.decode_session(k.key, one) == codec.decode_session(k.key, two) == k.session
    assert SessionCodec((SECRET_B,)).encode_session(k.key, k.session)[9:13] != one[9:13]


def test_a_record_whose_clear_version_was_changed_does_not_open() -> None:
    """The clear version is bound to the record (associated data): a record given another
    version to pass a compare-and-set does not open."""
    codec = SessionCodec((SECRET_A,))
    k = Known()
    blob = codec.encode_session(k.key, k.session)
    moved = (k.session.version + 1).to_bytes(8, "big") + blob[8:]
    assert codec.decode_session(k.key, moved) is None


def test_codec_needs_a_secret_and_hides_it() -> None:
    """No secret is an error; the codec's repr shows no key material."""
    with pytest.raises(ValueError, match="at least one secret"):
        SessionCodec(())
    codec = SessionCodec((SECRET_A, SECRET_B))
    assert SECRET_A not in repr(codec) and "2 secret" in repr(codec)


def _a_session() -> Session:
    now = time.time()
    return Session(
        claims={"sub": "u-cache", "email": "cache@example.test"},
        access_token="access-" + secrets.token_urlsafe(16),
        refresh_token="refresh-" + secrets.token_urlsafe(16),
        expires_at=now + 3600,
        refresh_at=now + 3570,
        scopes=("openid",),
        created_at=now,
        last_seen=now,
        claims_at=now,
    )


def test_opened_session_cache_never_serves_what_decoding_would_not() -> None:
    """The codec's cache of opened sessions answers only for the very same bytes under the
    very same key: a tampered record, or the record under another key, still reads as absent."""
    codec = SessionCodec(["k" * 32])
    key, other_key = hash_key("sid-1"), hash_key("sid-2")
    blob = codec.encode_session(key, _a_session())
    first = codec.decode_session(key, blob)
    assert first is not None
    assert codec.decode_session(key, bytes(blob)) is first  # the same bytes: the same object
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    assert codec.decode_session(key, tampered) is None
    assert codec.decode_session(other_key, blob) is None
    newer = codec.encode_session(key, _a_session())
    assert codec.decode_session(key, newer) not in (None, first)  # a new record: decoded anew
