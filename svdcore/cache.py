"""Content-addressed result cache.

Keys come from tensor *contents* (blake2b of the bytes, with shape and dtype), never from
``str(array)``: two arrays that print alike must not share an entry (flask-caching's
memoize keys on ``str(args)``, and numpy elides the middle of large arrays). Values are stored in
any cachelib backend: ``SimpleCache`` in memory by default, ``FileSystemCache`` for the
embedded server, ``RedisCache`` for a lab deployment.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import numpy as np
import torch
from cachelib import BaseCache, SimpleCache

__all__ = ["KeyLocks", "ResultCache", "make_key", "tensor_key"]

T = TypeVar("T")
_MISS = object()


def tensor_key(t: torch.Tensor | np.ndarray) -> str:
    """Hex digest identifying a tensor's contents, shape and dtype (device-independent)."""
    if isinstance(t, torch.Tensor):
        t = t.detach()
        if t.dtype == torch.bfloat16:
            arr = t.cpu().view(torch.int16).numpy()
            dtype = "bfloat16"
        else:
            arr = t.cpu().numpy()
            dtype = str(arr.dtype)
    else:
        arr = np.asarray(t)
        dtype = str(arr.dtype)
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{dtype}|{arr.shape}|".encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def make_key(*parts: object) -> str:
    """Join key parts (strings, numbers, tuples) into one cache key, hashed to a fixed length."""
    text = "\x1f".join(repr(p) for p in parts)
    return "svdscope:" + hashlib.blake2b(text.encode(), digest_size=20).hexdigest()


class KeyLocks:
    """One lock per key, alive only while some thread holds or waits for it.

    ``with locks.hold(key):`` serialises the threads that use one key (and no others). Each
    lock is reference-counted and dropped when its last user leaves, so the bookkeeping
    holds only the keys in use right now, however many keys pass through. Invariant:
    ``len(locks) == 0`` whenever no thread is inside ``hold``.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, list[int]]] = {}

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.setdefault(key, (threading.Lock(), [0]))
            users[0] += 1
        try:
            with lock:
                yield
        finally:
            with self._guard:
                users[0] -= 1
                if users[0] == 0:
                    del self._locks[key]


class ResultCache:
    """``get_or_compute(key, fn)`` over a cachelib backend; counts hits and misses.

    Concurrent misses on one key in one process compute once (a per-key lock from
    :class:`KeyLocks`, released when no thread needs it any more).
    """

    def __init__(self, backend: BaseCache | None = None, *, timeout: int = 0):
        self.backend = backend if backend is not None else SimpleCache(threshold=256)
        self.timeout = timeout
        self.hits = 0
        self.misses = 0
        self.locks = KeyLocks()

    def get_or_compute(self, key: str, fn: Callable[[], T]) -> T:
        """The cached value for ``key``, or ``fn()`` stored under it."""
        value = self.backend.get(key)
        if value is not None:
            self.hits += 1
            return value
        with self.locks.hold(key):
            value = self.backend.get(key)
            if value is not None:
                self.hits += 1
                return value
            self.misses += 1
            value = fn()
            self.backend.set(key, value, timeout=self.timeout)
            return value

    def clear(self) -> None:
        self.backend.clear()
        self.hits = self.misses = 0
