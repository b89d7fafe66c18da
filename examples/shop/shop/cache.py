"""A small LRU cache whose size can change at run time.

``functools.lru_cache`` fixes its size when the decorated function is defined; the shop's
cache size is a tuning parameter (``SHOP_CACHE_SIZE``) that a benchmark or an operator
changes, so the cache is an :class:`~collections.OrderedDict` with an explicit bound.
It is shared by the server's request threads, hence the lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING = object()


class LRUCache(Generic[K, V]):
    """At most ``maxsize`` entries; the least recently used one is evicted first.

    ``maxsize = 0`` disables caching (every lookup misses), which is how a benchmark
    measures what the cache is worth.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 0:
            raise ValueError(f"maxsize must be >= 0, got {maxsize}")
        self._maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def maxsize(self) -> int:
        return self._maxsize

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            value = self._data.get(key, _MISSING)
            if value is _MISSING:
                self.misses += 1
                return default
            self._data.move_to_end(key)
            self.hits += 1
            return value  # type: ignore[return-value]

    def put(self, key: K, value: V) -> None:
        with self._lock:
            if self._maxsize == 0:
                return
            self._data[key] = value
            self._data.move_to_end(key)
            self._evict()

    def resize(self, maxsize: int) -> None:
        """Change the bound; shrinking evicts the least recently used entries at once."""
        if maxsize < 0:
            raise ValueError(f"maxsize must be >= 0, got {maxsize}")
        with self._lock:
            self._maxsize = maxsize
            self._evict()

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def stats(self) -> dict[str, int]:
        return {"size": len(self._data), "maxsize": self._maxsize, "hits": self.hits,
                "misses": self.misses}

    def _evict(self) -> None:
        while len(self._data) > self._maxsize:
            self._data.popitem(last=False)
