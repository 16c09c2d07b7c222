"""svdcore.io.load_model: every format, lazy reads, sharding, chains, and refusals."""

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import svdcore as sc
from svdcore.sources import SafetensorsSource


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3))


def test_safetensors_single_file_is_lazy(tmp_path, monkeypatch):
    sd = {k: v.contiguous() for k, v in _mlp().state_dict().items()}
    path = tmp_path / "m.safetensors"
    save_file(sd, str(path))
    calls = []
    original = SafetensorsSource.load

    def counting(self, key):
        calls.append(key)
        return original(self, key)

    monkeypatch.setattr(SafetensorsSource, "load", counting)
    net = sc.load_model(path)
    assert [layer.name for layer in net.layers] == ["0", "2", "4"]
    assert calls == []  # listing reads headers only
    torch.testing.assert_close(net.matrix("2"), sd["2.weight"])
    assert calls == ["2.weight"]  # one tensor read on demand
    assert not net.executable


def _write_shards(folder: Path, sd: dict) -> dict:
    keys = sorted(sd)
    half = len(keys) // 2
    shards = {"model-00001-of-00002.safetensors": keys[:half]}
    shards["model-00002-of-00002.safetensors"] = keys[half:]
    weight_map = {}
    for fname, ks in shards.items():
        save_file({k: sd[k].contiguous() for k in ks}, str(folder / fname))
        weight_map.update({k: fname for k in ks})
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return weight_map


def test_sharded_folder_and_index(tmp_path):
    sd = _mlp().state_dict()
    _write_shards(tmp_path, sd)
    for target in (tmp_path, tmp_path / "model.safetensors.index.json"):
        net = sc.load_model(target)
        assert {layer.name for layer in net.layers} == {"0", "2", "4"}
        for name in ("0", "2", "4"):
            torch.testing.assert_close(net.matrix(name), sd[f"{name}.weight"])


def test_sharded_index_with_missing_shard(tmp_path):
    _write_shards(tmp_path, _mlp().state_dict())
    os.remove(tmp_path / "model-00002-of-00002.safetensors")
    with pytest.raises(sc.LoadError, match="missing"):
        sc.load_model(tmp_path / "model.safetensors.index.json")


def test_index_cannot_point_outside_its_folder(tmp_path):
    index = {"weight_map": {"a.weight": "../elsewhere.safetensors"}}
    (tmp_path / "x.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(sc.LoadError, match="outside its folder"):
        sc.load_model(tmp_path / "x.safetensors.index.json")


def test_folder_of_plain_safetensors(tmp_path):
    save_file({"a.weight": torch.randn(3, 4)}, str(tmp_path / "a.safetensors"))
    save_file({"b.weight": torch.randn(4, 5)}, str(tmp_path / "b.safetensors"))
    assert [layer.name for layer in sc.load_model(tmp_path).layers] == ["a", "b"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(sc.LoadError, match=r"no \.safetensors"):
        sc.load_model(empty)


def test_state_dict_formats_and_wrappers(tmp_path):
    m = _mlp()
    for suffix in (".pt", ".pth", ".bin"):
        torch.save(m.state_dict(), tmp_path / f"m{suffix}")
        net = sc.load_model(tmp_path / f"m{suffix}")
        torch.testing.assert_close(net.matrix("4"), m[4].weight.detach())
    torch.save({"epoch": 3, "state_dict": m.state_dict()}, tmp_path / "ckpt.pt")
    net = sc.load_model(tmp_path / "ckpt.pt")
    assert [layer.name for layer in net.layers] == ["0", "2", "4"]


def test_chain_made_executable_matches_module(tmp_path):
    m = _mlp()
    torch.save(m.state_dict(), tmp_path / "m.pt")
    net = sc.load_model(tmp_path / "m.pt", activation="tanh")
    assert net.executable and net.input_shape == (12,)
    x = torch.randn(6, 12)
    torch.testing.assert_close(net.forward(x), m(x).detach())
    acts = net.activations(x, ["2"])
    torch.testing.assert_close(acts["2"], m[:3](x).detach())
    # also from safetensors, with named layers in natural order (fc10 after fc2)
    named = {
        "fc1.weight": torch.randn(5, 4),
        "fc2.weight": torch.randn(6, 5),
        "fc10.weight": torch.randn(2, 6),
        "fc10.bias": torch.randn(2),
    }
    save_file(named, str(tmp_path / "named.safetensors"))
    net = sc.load_model(tmp_path / "named.safetensors", activation="relu")
    x = torch.randn(3, 4)
    ref = torch.relu(torch.relu(x @ named["fc1.weight"].T) @ named["fc2.weight"].T)
    ref = ref @ named["fc10.weight"].T + named["fc10.bias"]
    torch.testing.assert_close(net.forward(x), ref)


def test_chain_refusals(tmp_path):
    save_file(
        {"a.weight": torch.randn(3, 4), "b.weight": torch.randn(3, 4)}, str(tmp_path / "x.st")
    )
    path = tmp_path / "x.safetensors"
    (tmp_path / "x.st").rename(path)
    with pytest.raises(sc.LoadError, match="not a chain"):
        sc.load_model(path, activation="relu")
    with pytest.raises(sc.LoadError, match="unknown activation 'swish2'"):
        sc.load_model(path, activation="swish2")


def test_torch_export_archive_is_executable(tmp_path):
    m = _mlp().eval()
    ep = torch.export.export(m, (torch.randn(2, 12),))
    torch.export.save(ep, tmp_path / "m.pt2")
    net = sc.load_model(tmp_path / "m.pt2")
    assert net.executable and net.input_shape == (12,)
    assert [layer.name for layer in net.layers] == ["0", "2", "4"]
    x = torch.randn(5, 12)  # exported with batch 2: runs in padded chunks
    torch.testing.assert_close(net.forward(x), m(x).detach())
    acts = net.activations(x, ["2"])
    torch.testing.assert_close(acts["2"], m[:3](x).detach())


@pytest.mark.parametrize(
    "block, fragment",
    [
        (nn.BatchNorm1d(8), "batch norm"),
        (nn.Dropout(0.5), "dropout"),
    ],
)
def test_a_training_mode_export_shows_its_weights_and_refuses_to_run(tmp_path, block, fragment):
    from svdcore.surgery import spectral_surgery

    m = nn.Sequential(nn.Linear(12, 8), block, nn.ReLU(), nn.Linear(8, 3)).train()
    torch.export.save(torch.export.export(m, (torch.randn(4, 12),)), tmp_path / "t.pt2")
    net = sc.load_model(tmp_path / "t.pt2")
    assert [layer.name for layer in net.layers] == ["0", "3"]  # the weights are there
    assert net.matrix("0").shape == (8, 12)
    x = torch.randn(4, 12)
    for run in (
        lambda: net.forward(x),
        lambda: net.activations(x, ["0"]),
        lambda: spectral_surgery(net, x[0], split="0"),
        lambda: spectral_surgery(net, x[0], split="0", rank=2),
    ):
        with pytest.raises(sc.ExecutionError, match=f"training mode \\({fragment}.*model.eval"):
            run()
    # the same network exported in eval mode runs
    torch.export.save(torch.export.export(m.eval(), (torch.randn(4, 12),)), tmp_path / "e.pt2")
    torch.testing.assert_close(sc.load_model(tmp_path / "e.pt2").forward(x), m(x).detach())


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch /tmp/svdscope-pwned",))


def test_pickle_with_code_is_refused_not_run(tmp_path):
    marker = Path("/tmp/svdscope-pwned")
    marker.unlink(missing_ok=True)
    torch.save({"weight": torch.randn(2, 2), "evil": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(sc.LoadError, match="never unpickles code"):
        sc.load_model(tmp_path / "evil.pt")
    assert not marker.exists()
    torch.save(_mlp(), tmp_path / "whole_model.pt")  # a pickled nn.Module
    with pytest.raises(sc.LoadError, match=r"state_dict\(\)"):
        sc.load_model(tmp_path / "whole_model.pt")


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("x.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json", "not a readable"),
        ("x.safetensors", b"", "not a readable"),
        ("x.pt", b"garbage", "not a readable PyTorch"),
        ("x.pt2", b"garbage", "not a readable torch.export"),
        ("x.onnx", b"garbage", "not a readable ONNX model"),
        ("x.tflite", b"garbage", "unsupported model file"),
    ],
)
def test_broken_files_give_clear_errors(tmp_path, name, content, fragment):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(sc.LoadError, match=fragment):
        sc.load_model(path)


def test_truncated_safetensors(tmp_path):
    save_file({"a.weight": torch.randn(64, 64)}, str(tmp_path / "a.safetensors"))
    data = (tmp_path / "a.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(sc.LoadError, match=r"cut\.safetensors"):
        sc.load_model(tmp_path / "cut.safetensors").matrix("a")


def test_missing_path_and_unknown_format(tmp_path):
    with pytest.raises(sc.LoadError, match="no such model"):
        sc.load_model(tmp_path / "nope.safetensors")
    (tmp_path / "a.pt").write_bytes(b"x")
    with pytest.raises(sc.LoadError, match="unknown format"):
        sc.load_model(tmp_path / "a.pt", format="tflite")


def test_state_dict_without_tensors(tmp_path):
    torch.save({"epoch": 3}, tmp_path / "meta.pt")
    with pytest.raises(sc.LoadError, match="no tensors"):
        sc.load_model(tmp_path / "meta.pt")
