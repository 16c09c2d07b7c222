"""Exact vs. iterative smoothness descrambling, in one run (issues 3 and 14).

    python bench/bench_descramble.py [--sizes 80 256 1024] [--signals 10000] [--steps 500]
                                     [--lrs 0.01 0.03 0.1] [--sweep-steps 100] [--threads T]
                                     [--riemannian-steps 3000]

For each width n: N signals Y (n x N; a smooth low-rank part plus noise, like a layer's
outputs), then
- exact: ``descramble(Y)`` (Gram product + one eigh + products), and the bare cost of what it
  cannot avoid: ``Y @ Y.T`` plus two ``torch.linalg.eigh`` (one of D^T D, one of S);
- iterative, Riemannian L-BFGS (the default, float64, its own stopping rule, at most
  ``--riemannian-steps``): steps taken, seconds, time over the exact method from the same
  Gram matrix S, and the objective ratio iterative / exact (>= 1; issue 14 asks <= 1.001);
- iterative, the first method (Cayley map + Adam, float32): the learning rate picked by a
  short sweep, then ``--steps`` steps at that rate, its objective ratio;
and the exact method's time from Y over the bare cost. A last row does the same on real
signals: DEERNet's first layer after its tanh, wiretapped on 10^4 simulated DEER traces.
Last, a Gram matrix over 10^6 signals streamed in batches, with the peak extra memory it
needed (tracemalloc of numpy buffers is blind to torch, so the script reports the batch and
accumulator sizes it allocated).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from svdcore.descramble import GramAccumulator, descramble, second_derivative


def _signals(n: int, N: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 1, n, dtype=torch.float64)[:, None]
    freqs = torch.rand(1, 24, generator=g, dtype=torch.float64) * 6
    basis = torch.cat([torch.sin(2 * torch.pi * freqs * t), torch.cos(2 * torch.pi * freqs * t)], 1)
    mix = torch.randn(basis.shape[1], N, generator=g, dtype=torch.float64)
    smooth = basis @ mix
    # scramble the rows, as training does, then add noise
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return Q @ smooth + 0.1 * torch.randn(n, N, generator=g, dtype=torch.float64)


def _deernet_signals(N: int) -> torch.Tensor:
    """DEERNet's fc1 after its tanh on N simulated traces: (80, N) float64."""
    import svdcore as sc

    net = sc.zoo.load("deernet")
    x, _ = sc.zoo.get("deernet").make_data(n=N, seed=11)
    return net.activations(x, ["act1"])["act1"].double().T.contiguous()


def _median(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _bare(Y: torch.Tensor, D: torch.Tensor) -> None:
    S = Y @ Y.T
    torch.linalg.eigh(D.T @ D)
    torch.linalg.eigh(S)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[80, 256, 1024])
    p.add_argument("--signals", type=int, default=10_000)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--lrs", type=float, nargs="+", default=[0.01, 0.03, 0.1])
    p.add_argument("--sweep-steps", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--riemannian-steps", type=int, default=3000)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; N = {args.signals}")
    head = (
        f"{'signals':>14} {'exact(Y) s':>10} {'bare s':>8} {'exact/bare':>10} {'exact(S) s':>10} "
        f"{'riem steps':>10} {'riem s':>8} {'riem/exact t':>12} {'riem/exact obj':>16} "
        f"{'adam lr':>8} {'adam s':>8} {'adam/exact obj':>14}"
    )
    print(head)
    cases = [(f"synthetic {n}", lambda n=n: _signals(n, args.signals, seed=n)) for n in args.sizes]
    cases.append(("deernet fc1", lambda: _deernet_signals(args.signals)))
    for label, make in cases:
        Y = make()
        n = Y.shape[0]
        D = second_derivative(n)
        exact_y_s, _ = _median(lambda Y=Y: descramble(Y), args.repeat)
        bare_s, _ = _median(lambda Y=Y, D=D: _bare(Y, D), args.repeat)
        S = Y @ Y.T  # every method from the same Gram matrix
        exact_s, exact = _median(lambda S=S: descramble(gram_matrix=S), args.repeat)
        t0 = time.perf_counter()
        riem = descramble(gram_matrix=S, method="iterative", steps=args.riemannian_steps)
        riem_s = time.perf_counter() - t0
        sweep = {
            lr: descramble(
                gram_matrix=S,
                method="iterative",
                optimizer="adam",
                steps=args.sweep_steps,
                lr=lr,
                precision="float32",
            ).objective
            for lr in args.lrs
        }
        best = min(sweep, key=sweep.get)
        t0 = time.perf_counter()
        adam = descramble(
            gram_matrix=S,
            method="iterative",
            optimizer="adam",
            steps=args.steps,
            lr=best,
            tol=0.0,
            precision="float32",
        )
        adam_s = time.perf_counter() - t0
        print(
            f"{label:>14} {exact_y_s:>10.4f} {bare_s:>8.4f} {exact_y_s / bare_s:>10.2f} "
            f"{exact_s:>10.4f} {riem.steps:>10} {riem_s:>8.2f} {riem_s / exact_s:>12.0f} "
            f"{riem.objective / exact.objective:>16.9f} {best:>8g} {adam_s:>8.2f} "
            f"{adam.objective / exact.objective:>14.4f}"
        )

    n, total, batch = 256, 1_000_000, 20_000
    acc = GramAccumulator(n)
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _ in range(total // batch):
        acc.update(torch.randn(batch, n, generator=g, dtype=torch.float64), rows=True)
    res = descramble(gram_matrix=acc.S)
    mib = (batch * n + n * n) * 8 / 2**20
    print(
        f"streamed Gram: N = {acc.count:,} signals of n = {n} in batches of {batch:,} "
        f"({time.perf_counter() - t0:.1f} s; working set {mib:.0f} MiB vs "
        f"{total * n * 8 / 2**20:.0f} MiB for Y at once); objective {res.objective:.4g}"
    )


if __name__ == "__main__":
    main()
