"""Opening a large safetensors checkpoint: time to list its layers, time to materialise the
largest tensor, and the peak memory that costs, in a fresh process each.

    python bench/bench_checkpoint.py [--gib 2] [--dir DIR] [--keep]

Writes one checkpoint of about `--gib` GiB (float32 4096 x 4096 layers, the last layer
smaller to hit the size) and the same tensors as a sharded Hugging Face folder (four
shards and model.safetensors.index.json), then for each, in a new Python process (so that
imports and earlier work do not count): `svdscope.load_model` + the layer list (which
reads only the header), then `Network.matrix` of the largest tensor followed by a full pass
over it (so every page is really read), reporting the seconds of each and the increase of
peak resident memory (VmHWM of /proc/self/status; ru_maxrss would carry the parent's peak
over exec) over the peak right after the imports, as a multiple of the largest tensor's
size. The target is a checkpoint open in < 2 s and peak
memory below twice the largest tensor opened.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

SIDE = 4096
TENSOR_BYTES = SIDE * SIDE * 4

_PROBE = r"""
import json, sys, time
import torch
import svdcore as sc

def hwm():  # peak resident set of this process image (VmHWM; reset by exec, unlike ru_maxrss)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

base = hwm()
t0 = time.perf_counter()
net = sc.load_model(sys.argv[1])
layers = [info for info in net.layers]
t1 = time.perf_counter()
largest = max(layers, key=lambda info: torch.Size(info.shape).numel())
W = net.matrix(largest.name)
total = float(W.sum())  # touch every page
t2 = time.perf_counter()
peak = hwm()
print(json.dumps({"open": t1 - t0, "materialise": t2 - t1, "layers": len(layers),
                  "largest": largest.name, "bytes": W.numel() * W.element_size(),
                  "peak_increase": peak - base}))
"""


def _write(folder: Path, gib: float) -> tuple[Path, Path]:
    """One file and a four-shard folder with the same tensors, about `gib` GiB each."""
    count = max(1, round(gib * 1024**3 / TENSOR_BYTES))
    gen = torch.Generator().manual_seed(0)
    tensors = {f"layers.{i}.weight": torch.randn(SIDE, SIDE, generator=gen) for i in range(count)}
    single = folder / "model.safetensors"
    save_file(tensors, str(single))
    sharded = folder / "sharded"
    sharded.mkdir(exist_ok=True)
    names = list(tensors)
    shards = [names[i::4] for i in range(4) if names[i::4]]
    weight_map = {}
    for i, group in enumerate(shards, start=1):
        fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file({n: tensors[n] for n in group}, str(sharded / fname))
        weight_map.update(dict.fromkeys(group, fname))
    index = {"metadata": {"total_size": count * TENSOR_BYTES}, "weight_map": weight_map}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    return single, sharded


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gib", type=float, default=2.0)
    p.add_argument("--dir", type=Path, default=None)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="svdscope-ckpt-"))
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    single, sharded = _write(folder, args.gib)
    size = sum(f.stat().st_size for f in folder.rglob("*.safetensors")) / 2 / 1024**3
    print(f"wrote {size:.2f} GiB twice (one file, 4 shards) in {time.perf_counter() - t0:.0f} s")
    head = f"{'checkpoint':>12} {'layers':>6} {'open s':>7} {'largest':>10} {'read s':>7} "
    print(head + f"{'tensor MiB':>10} {'peak +MiB':>9} {'peak/tensor':>11}")
    try:
        for label, path in (("one file", single), ("4 shards", sharded)):
            out = subprocess.run(
                [sys.executable, "-c", _PROBE, str(path)],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"{label:>12} {r['layers']:>6} {r['open']:>7.3f} {r['largest']:>10} "
                f"{r['materialise']:>7.3f} {r['bytes'] / 2**20:>10.0f} "
                f"{r['peak_increase'] / 2**20:>9.0f} {r['peak_increase'] / r['bytes']:>11.2f}"
            )
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
