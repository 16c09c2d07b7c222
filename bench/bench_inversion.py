"""Inversion by optimisation on an exported ResNet-shaped CNN: a batch-1 vs a batch-8
torch.export archive vs the module itself, in one run (issue 14).

    python bench/bench_inversion.py [--steps 200] [--train 2000] [--repeat 3] [--threads T]

The CNN: conv stem (16 channels) + eval-mode BatchNorm + ReLU, two residual blocks, global
average pool, Linear to 10 classes, on 1x28x28 inputs; exported at batch 1 and at batch 8
(``torch.export.export`` + ``save``, loaded back with ``svdcore.load_model``). Per network,
each repeat times, back to back:
- ``optimise``: ``svdcore.optimise_input`` from the avg-img start for ``--steps`` Adam
  steps on a given target (the per-step cost: one forward and one pullback of one sample
  through the engine's float64 copy);
- ``min-img``: the same call with ``steps=1`` and the min-img start, i.e. the training
  outputs of ``--train`` images through ``forward_batches`` (chunks, one sample per row of
  a fixed batch, the last chunk padded) plus one step;
- ``bare f32``: a plain float32 autograd loop of Adam on the module itself (no engine,
  no checks): the floor a hand-written loop reaches.
Prints the median seconds and the ratio to the module's ``optimise`` time of the same
repeat, and checks that the three networks reach the same distance (1e-5 relative).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from machine import cpu_pressure
from torch import nn

import svdcore as sc

SHAPE = (1, 28, 28)


class _Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))) + x)


def resnetish(channels: int = 16) -> nn.Module:
    torch.manual_seed(0)
    stem = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
    module = nn.Sequential(
        stem, nn.ReLU(), _Block(channels), _Block(channels),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10),
    )  # fmt: skip
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 1.5)
    return module.eval()


def bare_loop(module: nn.Module, x0: torch.Tensor, target: torch.Tensor, steps: int) -> float:
    x = x0.clone().float().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.01)
    for p in module.parameters():
        p.requires_grad_(False)
    for _ in range(steps):
        opt.zero_grad()
        loss = (module(x[None])[0] - target.float()).pow(2).sum()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float((module(x[None])[0] - target.float()).norm())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    module = resnetish()
    x = torch.rand(args.train, *SHAPE, generator=torch.Generator().manual_seed(1))
    y = torch.arange(args.train) % 10
    with torch.no_grad():
        target = sc.ideal_output(module(x), y, 3)
    with tempfile.TemporaryDirectory() as tmp:
        nets: dict[str, object] = {"module": module}
        for batch in (1, 8):
            path = Path(tmp) / f"b{batch}.pt2"
            torch.export.save(torch.export.export(module, (torch.randn(batch, *SHAPE),)), path)
            nets[f"archive, batch {batch}"] = sc.load_model(path)
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu; ResNet-shaped "
            f"CNN {SHAPE}, {args.steps} steps, {args.train} training images; "
            f"CPU pressure {cpu_pressure()}"
        )
        kw = {"x_train": x, "y_train": y, "cls": 3, "lr": 0.01}
        x0 = x[y == 3].mean(0)
        for net in nets.values():  # warm-up: the engine's float64 copy, first calls
            sc.optimise_input(net, target, start="min-img", steps=2, **kw)
        bare_loop(module, x0, target, 2)  # the first float32 backward pass takes seconds
        times: dict[str, dict[str, list[float]]] = {n: {} for n in nets}
        bare: list[float] = []
        dist: dict[str, float] = {}
        for _ in range(args.repeat):
            for name, net in nets.items():
                t0 = time.perf_counter()
                res = sc.optimise_input(net, target, start="avg-img", steps=args.steps, **kw)
                t1 = time.perf_counter()
                sc.optimise_input(net, target, start="min-img", steps=1, **kw)
                t2 = time.perf_counter()
                times[name].setdefault("optimise", []).append(t1 - t0)
                times[name].setdefault("min-img", []).append(t2 - t1)
                dist[name] = res.distance
            t0 = time.perf_counter()
            bare_dist = bare_loop(module, x0, target, args.steps)
            bare.append(time.perf_counter() - t0)
        base = statistics.median(times["module"]["optimise"])
        print("| network | optimise (s) | / module | min-img start (s) | distance |")
        print("| --- | --- | --- | --- | --- |")
        for name in nets:
            opt = statistics.median(times[name]["optimise"])
            start = statistics.median(times[name]["min-img"])
            print(f"| {name} | {opt:.2f} | {opt / base:.2f} | {start:.2f} | {dist[name]:.6g} |")
        b = statistics.median(bare)
        print(f"| bare float32 loop | {b:.2f} | {b / base:.2f} | - | {bare_dist:.6g} |")
        ref = dist["module"]
        bad = [n for n, d in dist.items() if abs(d - ref) > 1e-5 * ref]
        print("distances agree to 1e-5 relative" if not bad else f"MISMATCH: {bad}")


if __name__ == "__main__":
    main()
