"""ONNX files as weight-only networks: the same weights as the torch model they were
exported from, Constant tensors too, and clear refusals for broken files and external data
outside the model's folder."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

import svdcore as sc
from svdcore.io.onnx_source import OnnxSource


def _export(model: nn.Module, example: torch.Tensor, path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), dynamo=False)


def test_exported_torch_model_lists_the_same_weights(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 16), nn.Tanh()
    )
    model.append(nn.Linear(16, 3))
    path = tmp_path / "net.onnx"
    _export(model.eval(), torch.randn(1, 1, 8, 8), path)
    net = sc.load_model(path)
    state = model.state_dict()
    matrices = {k.removesuffix(".weight"): t for k, t in state.items() if t.ndim >= 2}
    assert sorted(info.name for info in net.layers) == sorted(matrices) == ["0", "3", "5"]
    for name, tensor in matrices.items():
        assert net.layer(name).shape == tuple(tensor.shape)
    W = net.matrix("3")
    np.testing.assert_array_equal(W.numpy(), state["3.weight"].numpy())
    conv = net.layer("0")
    assert conv.kind.startswith("conv") and conv.matrix_shape == (4, 9)
    assert not net.executable


def test_constant_nodes_and_dtypes(tmp_path):
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    const = helper.make_node(
        "Constant", [], ["proj.weight"], value=numpy_helper.from_array(w, "proj.weight")
    )
    ids = numpy_helper.from_array(np.arange(6, dtype=np.int64).reshape(2, 3), "ids")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    node = helper.make_node("Gemm", ["x", "proj.weight"], ["y"], transB=1)
    graph = helper.make_graph([const, node], "g", [x], [y], initializer=[ids])
    path = tmp_path / "const.onnx"
    onnx.save(helper.make_model(graph), str(path))
    source = OnnxSource(path)
    assert source.keys() == ["ids", "proj.weight"]
    assert source.meta("ids").dtype == "int64"
    net = sc.load_model(path)
    np.testing.assert_array_equal(net.matrix("proj").numpy(), w)
    assert not net.layer("ids").viewable and "int64" in net.layer("ids").note


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"", "not a readable ONNX model|without weights"),
        (b"\x08\x07garbage-that-is-not-protobuf\xff\xff\xff", "not a readable ONNX model"),
    ],
)
def test_broken_files_are_refused_clearly(tmp_path, content, fragment):
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    with pytest.raises(sc.LoadError, match=fragment):
        sc.load_model(path)


def test_external_data_outside_the_folder_is_refused(tmp_path):
    w = numpy_helper.from_array(np.ones((4, 4), dtype=np.float32), "fc.weight")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    entry = w.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    graph = helper.make_graph([], "g", [], [], initializer=[w])
    path = tmp_path / "ext.onnx"
    onnx.save(helper.make_model(graph), str(path))
    net = sc.load_model(path)
    with pytest.raises(sc.LoadError, match="outside the model's folder"):
        net.matrix("fc")
