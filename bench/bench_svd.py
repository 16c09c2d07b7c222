"""svdcore.svd vs. a bare torch.linalg.svd on the same matrices, in one run.

    python bench/bench_svd.py [--repeat N] [--threads T] [--device cuda]

Prints, per shape, the median seconds of each and their ratio (svdcore / bare). svdcore adds
input validation (finite check), the float32 cast and sign fixing; the ratio shows what that
costs. ``--device cuda`` sets ``SVDSCOPE_DEVICE`` and times the bare SVD of the matrix on
the GPU against ``svdcore.svd`` of the CPU matrix (which computes on the GPU and brings the
factors back). Also the cached path: a ResultCache hit vs. recomputing. Only ratios measured
in one run mean anything on a shared machine (shared/recipes/performance-facts.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import svdcore as sc

SHAPES = [(256, 256), (1024, 1024), (4096, 1024)]


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        _sync()
        t0 = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu", help="cpu or cuda (SVDSCOPE_DEVICE)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ["SVDSCOPE_DEVICE"] = args.device
    device = sc.default_device()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
    cols = ["shape", "bare s", "svdcore s", "ratio", "cache hit s", "hit/miss"]
    widths = [12, 9, 10, 7, 12, 9]
    print(" ".join(f"{c:>{w}}" for c, w in zip(cols, widths, strict=True)))
    gen = torch.Generator().manual_seed(0)
    for m, n in SHAPES:
        W = torch.randn(m, n, generator=gen)
        Wd = W.to(device)
        torch.linalg.svd(Wd, full_matrices=False)  # warm-up
        sc.svd(W)
        bare = _median_time(lambda Wd=Wd: torch.linalg.svd(Wd, full_matrices=False), args.repeat)
        ours = _median_time(lambda W=W: sc.svd(W), args.repeat)
        cache = sc.cache.ResultCache()
        key = sc.cache.make_key("svd", sc.cache.tensor_key(W))
        cache.get_or_compute(key, lambda W=W: sc.svd(W).to_numpy())

        def hit(W=W, cache=cache):
            k = sc.cache.make_key("svd", sc.cache.tensor_key(W))
            return cache.get_or_compute(k, lambda: None)

        hit_s = _median_time(hit, args.repeat)
        print(
            f"{m:>5}x{n:<6} {bare:>9.4f} {ours:>10.4f} {ours / bare:>7.2f} "
            f"{hit_s:>12.5f} {hit_s / ours:>9.4f}"
        )


if __name__ == "__main__":
    main()
