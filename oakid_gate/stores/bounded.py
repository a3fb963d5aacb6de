"""A bounded LRU map whose entries each carry their own expiry: the memory store's
sessions and locks, and the near cache of the shared stores.

Every change is made under its owner's lock; :meth:`BoundedLRU.peek` is the
hot path's read without it (each of its steps is one atomic operation of an
``OrderedDict``: an entry removed or replaced meanwhile reads as it was a
moment before, and an expired one is never served).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["BoundedLRU"]

V = TypeVar("V")


class BoundedLRU(Generic[V]):
    """A bounded LRU map whose entries each carry their own expiry.

    An :class:`~collections.OrderedDict` in recency order: a read moves its
    entry to the end, a write beyond ``maxsize`` drops the first. (cachetools'
    ``LRUCache`` does the same with a dict and an ordered dict beside it, at
    several times the cost of a read on the hot path.)
    """

    def __init__(self, maxsize: int, clock: Callable[[], float]) -> None:
        self._maxsize = maxsize
        self._clock = clock
        self._cache: OrderedDict[str, tuple[V, float]] = OrderedDict()

    def get(self, key: str) -> V | None:
        item = self._cache.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return item[0]

    def peek(self, key: str) -> V | None:
        """:meth:`get` for a reader without the lock: an expired entry is left for the
        next write to drop, and one that went since it was read is not moved."""
        item = self._cache.get(key)
        if item is None or item[1] <= self._clock():
            return None
        try:  # noqa: SIM105 - contextlib.suppress costs a context manager per read
            self._cache.move_to_end(key)
        except KeyError:  # removed by another thread since the read
            pass
        return item[0]

    def put(self, key: str, value: V, ttl: float) -> None:
        self.put_until(key, value, self._clock() + ttl)

    def put_until(self, key: str, value: V, expires: float) -> None:
        """Keep ``value`` until the clock reads ``expires``."""
        cache = self._cache
        cache[key] = (value, expires)
        cache.move_to_end(key)
        if len(cache) > self._maxsize:
            cache.popitem(last=False)

    def pop(self, key: str) -> V | None:
        item = self._cache.pop(key, None)
        if item is None or item[1] <= self._clock():
            return None
        return item[0]

    def sweep(self) -> int:
        """Drop every expired entry; return how many went."""
        now = self._clock()
        expired = [k for k, (_, expires) in list(self._cache.items()) if expires <= now]
        for key in expired:
            self._cache.pop(key, None)
        return len(expired)

    def clear(self) -> None:
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)

    def __contains__(self, key: object) -> bool:
        return key in self._cache

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._cache))
