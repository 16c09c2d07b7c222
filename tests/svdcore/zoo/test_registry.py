"""The zoo registry and the shipped weights: names, entries, strict loading, file hygiene."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import svdcore.zoo as zoo
from svdcore.exceptions import DataError, LoadError
from svdcore.network import Network

NAMES = [
    "deernet",
    "digits",
    "digits-5layer",
    "digits-cnn",
    "squares-ae",
    "squares-ae-bias",
    "ilr-biexp-ndnd",
    "ilr-biexp-ndreg",
    "shapes-vgg",
]


def test_names_and_public_api():
    assert zoo.names() == NAMES
    for symbol in ("Axis", "TrainReport", "ZooEntry", "get", "load_module", "names", "train"):
        assert symbol in zoo.__all__
    assert "weights_path" in zoo.__all__


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(LoadError) as info:
        zoo.get("mnist")
    message = str(info.value)
    assert "mnist" in message
    assert all(name in message for name in NAMES)
    with pytest.raises(LoadError):
        zoo.weights_path("nope")
    with pytest.raises(LoadError):
        zoo.load_module("nope")


@pytest.mark.parametrize("name", NAMES)
def test_entry_fields(name):
    entry = zoo.get(name)
    assert isinstance(entry, zoo.ZooEntry)
    assert entry.name == name
    assert entry.title and len(entry.description) > 200
    assert "{" not in entry.description
    assert entry.weights_file == f"{name}.safetensors"
    assert zoo.weights_path(name).name == entry.weights_file
    assert zoo.weights_path(name).parent.name == "weights"
    x, _ = entry.make_data(n=5, seed=0, split="test")
    assert tuple(x.shape[1:]) == entry.input_shape


def test_deernet_axes():
    entry = zoo.get("deernet")
    assert entry.input_shape == (256,) and entry.image_shape is None
    t, r = entry.input_axis, entry.output_axis
    assert isinstance(t, zoo.Axis) and isinstance(r, zoo.Axis)
    assert (t.label, t.unit) == ("time", "µs") and (r.label, r.unit) == ("distance", "nm")
    assert t.values.shape == (256,) and r.values.shape == (256,)
    assert t.values[[0, -1]] == pytest.approx([0.0, 2.0])
    assert r.values[[0, -1]] == pytest.approx([1.178, 5.927])


@pytest.mark.parametrize("name", ["digits", "digits-5layer"])
def test_digits_entries_are_images(name):
    entry = zoo.get(name)
    assert entry.input_shape == (64,) and entry.image_shape == (8, 8)
    assert entry.input_axis is None and entry.output_axis is None


@pytest.mark.parametrize("name", NAMES)
def test_shipped_weights_load_strictly_and_run(name):
    path = zoo.weights_path(name)
    assert path.is_file()
    assert path.stat().st_size < 2 * 1024 * 1024
    module = zoo.load_module(name)
    assert not module.training
    fresh = zoo.get(name).build()
    assert set(module.state_dict()) == set(fresh.state_dict())
    with safe_open(str(path), framework="pt") as f:
        assert set(f.keys()) == set(fresh.state_dict())
        assert all(f.get_tensor(k).dtype == torch.float32 for k in f.keys())  # noqa: SIM118
    x, _ = zoo.get(name).make_data(n=16, seed=0, split="test")
    with torch.no_grad():
        out = module(x)
    expected_out = {
        "deernet": (256,),
        "squares-ae": (1, 64, 64),
        "squares-ae-bias": (1, 64, 64),
        "ilr-biexp-ndnd": (2,),
        "ilr-biexp-ndreg": (2,),
        "shapes-vgg": (4,),
    }
    assert out.shape == (16, *expected_out.get(name, (10,)))
    assert torch.isfinite(out).all()
    # the weights differ from a fresh initialisation
    first = next(k for k in fresh.state_dict() if k.endswith("weight"))
    assert not torch.equal(module.state_dict()[first], fresh.state_dict()[first])


@pytest.mark.parametrize("name", NAMES)
def test_shipped_sidecar_records_the_run(name):
    record = json.loads(zoo.weights_path(name).with_suffix(".json").read_text("utf-8"))
    assert record["name"] == name
    assert record["settings"]["seed"] == 0
    assert record["metrics"]
    assert all(np.isfinite(v) for v in record["metrics"].values())


def test_deernet_module_layout():
    module = zoo.load_module("deernet")
    assert [n for n, _ in module.named_children()] == ["fc1", "act1", "fc2", "act2"]
    assert tuple(module.fc1.weight.shape) == (80, 256)
    assert tuple(module.fc2.weight.shape) == (256, 80)
    assert isinstance(module.act1, torch.nn.Tanh)
    assert isinstance(module.act2, torch.nn.Sigmoid)


def test_missing_or_mismatched_weights_raise_load_error(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(LoadError, match="zoo train digits"):
        zoo.load_module("digits")
    save_file({"fc1.weight": torch.zeros(10, 64)}, str(tmp_path / "digits.safetensors"))
    with pytest.raises(LoadError, match="do not fit"):
        zoo.load_module("digits")
    (tmp_path / "digits.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(LoadError, match="could not read"):
        zoo.load_module("digits")


def test_train_rejects_unknown_options(tmp_path):
    with pytest.raises(DataError, match="n_train"):
        zoo.train("digits", out=tmp_path / "w.safetensors", n_train=10)


def test_entries_are_hashable_and_their_axes_read_only():
    entries = {zoo.get(name) for name in NAMES}
    assert len(entries) == len(NAMES)
    assert zoo.get("deernet") is zoo.get("deernet")
    axis = zoo.get("deernet").input_axis
    with pytest.raises(ValueError):
        axis.values[0] = 1.0


def test_load_gives_executable_network_with_axes_and_images():
    deer = zoo.load("deernet")
    assert deer.executable and deer.origin == "zoo:deernet"
    assert [layer.name for layer in deer.layers] == ["fc1", "fc2"]
    first, last = deer.view_info("fc1"), deer.view_info("fc2")
    assert first.col_axis.unit == "µs" and len(first.col_axis.values) == 256
    assert last.row_axis.unit == "nm" and last.col_axis is None
    x, _ = zoo.get("deernet").make_data(n=4, seed=1)
    out = deer.forward(x)
    acts = deer.activations(x, ["fc2", "act2"])
    np.testing.assert_allclose(acts["act2"].numpy(), out.numpy())
    np.testing.assert_allclose(torch.sigmoid(acts["fc2"]).numpy(), out.numpy(), atol=1e-6)
    digits = zoo.load("digits")
    assert digits.view_info("fc1").col_image_shape == (8, 8)
    assert isinstance(digits, Network)
