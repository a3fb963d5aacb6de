"""A bounded LRU map whose entries each carry their own expiry: the memory store's
sessions and locks, and the near cache of the shared stores.

Every change is made under its owner's lock; :meth:`BoundedLRU.peek` is a read
without it (each of its steps is one atomic operation of a dict: an entry
removed or replaced meanwhile reads as it was a moment before, and an expired
one is never served). :meth:`BoundedLRU.raw_reader` is the cheapest read there
is, for a caller that bounds what it serves by a deadline of its own that
always comes first (the memory store's sessions: :meth:`~oakid_gate.gate.Gate.admission`);
with :meth:`BoundedLRU.raw_expiries` beside it, for one that checks the expiry itself
(the sqlite store's hot read of its near cache).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["BoundedLRU"]

V = TypeVar("V")


class BoundedLRU(Generic[V]):
    """A bounded LRU map whose entries each carry their own expiry.

    The values in an :class:`~collections.OrderedDict` in recency order (a
    read moves its entry to the end, a write beyond ``maxsize`` drops the
    first), their expiries beside them in a dict. A write stores the expiry
    before the value and a removal drops the value first, so a read without the
    lock never meets a value without its expiry. (cachetools' ``LRUCache`` does
    the same with a dict and an ordered dict beside it, at several times the
    cost of a read on the hot path.)
    """

    def __init__(self, maxsize: int, clock: Callable[[], float]) -> None:
        self._maxsize = maxsize
        self._clock = clock
        self._values: OrderedDict[str, V] = OrderedDict()
        self._expires: dict[str, float] = {}

    def get(self, key: str) -> V | None:
        value = self._values.get(key)
        if value is None:
            return None
        if self._expires[key] <= self._clock():
            self._drop(key)
            return None
        self._values.move_to_end(key)
        return value

    def peek(self, key: str) -> V | None:
        """:meth:`get` for a reader without the lock: an expired entry is left for the
        next write to drop, and one that went since it was read is not moved."""
        value = self._values.get(key)
        if value is None or self._expires.get(key, -math.inf) <= self._clock():
            return None
        try:  # noqa: SIM105 - contextlib.suppress costs a context manager per read
            self._values.move_to_end(key)
        except KeyError:  # removed by another thread since the read
            pass
        return value

    def raw_reader(self) -> Callable[[str], V | None]:
        """The value last written under a key, expired or not, its recency left as it is:
        the ordered dict's own ``get``, one C call. Only for a caller whose own
        deadline for what it serves always comes before the entry's expiry, and that
        moves an entry in use (writes it again) often enough for the LRU order."""
        return self._values.get

    def raw_expiries(self) -> Callable[[str, float], float]:
        """The expiry of each value :meth:`raw_reader` reads, as ``get(key, default)``: for
        a hot read that compares it with a clock reading of its own (an entry written
        again meanwhile may pair its new expiry with the value read a moment before,
        as :meth:`peek` may)."""
        return self._expires.get

    def put(self, key: str, value: V, ttl: float) -> None:
        self.put_until(key, value, self._clock() + ttl)

    def put_until(self, key: str, value: V, expires: float) -> None:
        """Keep ``value`` until the clock reads ``expires``."""
        values = self._values
        self._expires[key] = expires
        values[key] = value
        values.move_to_end(key)
        if len(values) > self._maxsize:
            oldest, _ = values.popitem(last=False)
            del self._expires[oldest]

    def pop(self, key: str) -> V | None:
        value = self._values.pop(key, None)
        expires = self._expires.pop(key, -math.inf)
        if value is None or expires <= self._clock():
            return None
        return value

    def _drop(self, key: str) -> None:
        self._values.pop(key, None)
        self._expires.pop(key, None)

    def sweep(self) -> int:
        """Drop every expired entry; return how many went."""
        now = self._clock()
        expired = [k for k, expires in list(self._expires.items()) if expires <= now]
        for key in expired:
            self._drop(key)
        return len(expired)

    def clear(self) -> None:
        self._values.clear()
        self._expires.clear()

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._values))
