"""svdcore.cache: content keys and get_or_compute."""

import threading

import numpy as np
import torch
from cachelib import FileSystemCache

import svdcore as sc


def test_tensor_key_is_content_based():
    a = torch.zeros(2000)
    b = torch.zeros(2000)
    b[1000] = 1.0  # prints like `a` (str() elides the middle) but differs
    assert str(a.numpy()) == str(b.numpy())
    assert sc.cache.tensor_key(a) != sc.cache.tensor_key(b)
    assert sc.cache.tensor_key(a) == sc.cache.tensor_key(a.clone())
    assert sc.cache.tensor_key(a) == sc.cache.tensor_key(a.numpy())
    assert sc.cache.tensor_key(a) != sc.cache.tensor_key(a.double())
    assert sc.cache.tensor_key(a) != sc.cache.tensor_key(a.reshape(20, 100))
    assert sc.cache.tensor_key(a.bfloat16()) != sc.cache.tensor_key(a.half())


def test_make_key_distinguishes_parts():
    assert sc.cache.make_key("svd", 1, "x") != sc.cache.make_key("svd", "1", "x")
    assert sc.cache.make_key("a", ("b", 2)) == sc.cache.make_key("a", ("b", 2))


def test_get_or_compute_memory_and_filesystem(tmp_path):
    for backend in (None, FileSystemCache(str(tmp_path))):
        cache = sc.cache.ResultCache(backend)
        calls = []

        def compute(calls=calls):
            calls.append(1)
            return sc.svd(torch.eye(3)).to_numpy()

        first = cache.get_or_compute("k", compute)
        second = cache.get_or_compute("k", compute)
        assert len(calls) == 1 and cache.hits == 1 and cache.misses == 1
        np.testing.assert_array_equal(first[1], second[1])
        cache.clear()
        cache.get_or_compute("k", compute)
        assert len(calls) == 2


def test_concurrent_misses_compute_once():
    cache = sc.cache.ResultCache()
    calls = []
    gate = threading.Event()

    def slow():
        calls.append(1)
        gate.wait(1)
        return 42

    threads = [threading.Thread(target=cache.get_or_compute, args=("k", slow)) for _ in range(4)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(cache.locks) == 0  # the key's lock went with its last user


def test_lock_bookkeeping_stays_bounded():
    cache = sc.cache.ResultCache()
    for i in range(1000):
        cache.get_or_compute(f"key-{i}", lambda i=i: i)
    assert len(cache.locks) == 0 and cache.misses == 1000


def test_key_locks_serialise_one_key_only():
    locks = sc.cache.KeyLocks()
    inside = threading.Event()
    release = threading.Event()
    order = []

    def first():
        with locks.hold("a"):
            inside.set()
            release.wait(5)
            order.append("first")

    def second():
        with locks.hold("a"):
            order.append("second")

    t1 = threading.Thread(target=first)
    t1.start()
    inside.wait(5)
    with locks.hold("b"):  # another key is free while "a" is held
        order.append("other")
    t2 = threading.Thread(target=second)
    t2.start()  # blocks on "a" until first() leaves
    release.set()
    t1.join()
    t2.join()
    assert order == ["other", "first", "second"]
    assert len(locks) == 0
