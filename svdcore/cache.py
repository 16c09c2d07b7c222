"""Content-addressed result cache.

Keys come from tensor *contents* (blake2b of the bytes, with shape and dtype), never from
``str(array)``: two arrays that print alike must not share an entry (flask-caching's
memoize keys on ``str(args)``; see shared/recipes/performance-facts.md). Values are stored in
any cachelib backend: ``SimpleCache`` in memory by default, ``FileSystemCache`` for the
embedded server, ``RedisCache`` for a lab deployment.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
from cachelib import BaseCache, SimpleCache

__all__ = ["ResultCache", "make_key", "tensor_key"]

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


class ResultCache:
    """``get_or_compute(key, fn)`` over a cachelib backend; counts hits and misses.

    Concurrent misses on one key in one process compute once (a per-key lock).
    """

    def __init__(self, backend: BaseCache | None = None, *, timeout: int = 0):
        self.backend = backend if backend is not None else SimpleCache(threshold=256)
        self.timeout = timeout
        self.hits = 0
        self.misses = 0
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def get_or_compute(self, key: str, fn: Callable[[], T]) -> T:
        """The cached value for ``key``, or ``fn()`` stored under it."""
        value = self.backend.get(key)
        if value is not None:
            self.hits += 1
            return value
        with self._lock(key):
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
