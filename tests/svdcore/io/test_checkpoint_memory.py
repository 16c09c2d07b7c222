"""Opening a checkpoint costs memory only for what is looked at: listing the layers reads
the header, materialising a matrix reads that tensor (peak below twice its size), in a
fresh process (VmHWM) for a single file and for a sharded Hugging Face folder."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

SIDE = 2048  # 16 MiB float32 tensors
COUNT = 12  # 192 MiB in all

_PROBE = r"""
import json, sys
import svdcore as sc

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

base = hwm()
net = sc.load_model(sys.argv[1])
names = [info.name for info in net.layers]
listed = hwm()
W = net.matrix(names[5])
total = float(W.sum())  # every page of this tensor is read
print(json.dumps({"layers": len(names), "listed": listed - base, "opened": hwm() - base,
                  "bytes": W.numel() * W.element_size(), "finite": total == total}))
"""


def _probe(path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_only_the_opened_tensor_is_read(tmp_path):
    gen = torch.Generator().manual_seed(0)
    tensors = {f"layers.{i}.weight": torch.randn(SIDE, SIDE, generator=gen) for i in range(COUNT)}
    single = tmp_path / "model.safetensors"
    save_file(tensors, str(single))
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    weight_map = {}
    names = list(tensors)
    for i in range(3):
        fname = f"model-{i + 1:05d}-of-00003.safetensors"
        group = names[i::3]
        save_file({n: tensors[n] for n in group}, str(sharded / fname))
        weight_map.update(dict.fromkeys(group, fname))
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    del tensors
    tensor_bytes = SIDE * SIDE * 4
    for path in (single, sharded):
        r = _probe(path)
        assert r["layers"] == COUNT and r["bytes"] == tensor_bytes and r["finite"]
        assert r["listed"] < tensor_bytes / 4, f"{path.name}: listing read tensor data: {r}"
        assert r["opened"] < 2 * tensor_bytes, f"{path.name}: peak {r['opened']} bytes: {r}"
