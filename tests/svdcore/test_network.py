"""svdcore.network: layer listing, matrix views, view info, forward and activations."""

import numpy as np
import pytest
import torch
from torch import nn

import svdcore as sc
from svdcore.sources import DictSource


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, kernel_size=(3, 3))
        self.emb = nn.Embedding(11, 5)
        self.fc1 = nn.Linear(3 * 4 * 4, 8)
        self.act1 = nn.Tanh()
        self.fc2 = nn.Linear(8, 4)
        self.register_buffer("mask", torch.ones(2, 2, dtype=torch.bool))
        self.register_buffer("scale", torch.ones(7))

    def forward(self, x):
        h = self.conv(x).flatten(1)
        return self.fc2(self.act1(self.fc1(h)))


@pytest.fixture()
def small():
    torch.manual_seed(0)
    return Small()


def test_from_module_lists_every_rank2_tensor(small):
    net = sc.Network.from_module(small, input_shape=(2, 6, 6), name="small")
    by = {layer.name: layer for layer in net.layers}
    assert set(by) == {"conv", "emb", "fc1", "fc2", "mask"}
    assert by["conv"].kind == "conv2d" and by["conv"].matrix_shape == (3, 18)
    assert by["conv"].views == ("unfolded", "kernels")
    assert by["emb"].kind == "embedding" and by["emb"].matrix_shape == (11, 5)
    assert by["fc1"].kind == "linear" and by["fc1"].bias == "fc1.bias"
    # the boolean buffer is listed, with the reason it is not a matrix
    assert by["mask"].matrix_shape is None and "bool" in by["mask"].note
    assert not by["mask"].viewable
    with pytest.raises(sc.LayerError, match="cannot be viewed"):
        net.matrix("mask")
    assert net.executable and "executable" in repr(net)


def test_conv_views_match_definitions(small):
    net = sc.Network.from_module(small, input_shape=(2, 6, 6))
    W = small.conv.weight.detach()
    unfolded = net.matrix("conv")
    assert unfolded.shape == (3, 18)
    torch.testing.assert_close(net.matrix("conv", view="unfolded"), unfolded)
    # unfolded view applied to im2col patches == the convolution
    x = torch.randn(1, 2, 6, 6)
    cols = torch.nn.functional.unfold(x, kernel_size=3)  # (1, 18, 16)
    y = (unfolded @ cols[0]).reshape(3, 4, 4) + small.conv.bias.detach()[:, None, None]
    torch.testing.assert_close(y, small.conv(x)[0].detach(), atol=1e-5, rtol=1e-5)
    kernels = net.matrix("conv", view="kernels")
    assert kernels.shape == (6, 9)
    torch.testing.assert_close(kernels[1 * 2 + 0], W[1, 0].reshape(-1))
    vi = net.view_info("conv", view="kernels")
    assert vi.col_image_shape == (3, 3) and vi.shape == (6, 9)
    with pytest.raises(sc.LayerError, match="no matrix view 'rows'"):
        net.matrix("conv", view="rows")
    with pytest.raises(sc.LayerError, match="has no layer named 'fc9'"):
        net.matrix("fc9")


def test_matrix_dtype_and_raw_tensor(small):
    net = sc.Network.from_module(small, input_shape=(2, 6, 6))
    assert net.matrix("fc1").dtype == torch.float32
    assert net.matrix("fc1", dtype=torch.float64).dtype == torch.float64
    torch.testing.assert_close(net.tensor("fc2"), small.fc2.weight.detach())
    torch.testing.assert_close(net.bias("fc2"), small.fc2.bias.detach())


def test_activations_and_forward(small):
    net = sc.Network.from_module(small, input_shape=(2, 6, 6))
    x = torch.randn(5, 2, 6, 6)
    acts = net.activations(x, ["fc1", "act1", "fc2"])
    h = small.fc1(small.conv(x).flatten(1))
    torch.testing.assert_close(acts["fc1"], h.detach())
    torch.testing.assert_close(acts["act1"], torch.tanh(h).detach())
    torch.testing.assert_close(acts["fc2"], net.forward(x))
    # one sample without batch dim, and flat inputs reshaped
    assert net.forward(x[0]).shape == (1, 4)
    assert net.forward(x.reshape(5, -1).numpy()).shape == (5, 4)
    with pytest.raises(sc.DataError, match=r"input shape is \(2, 6, 6\)"):
        net.forward(torch.randn(5, 3))
    with pytest.raises(sc.DataError, match="NaN"):
        net.forward(torch.full((1, 2, 6, 6), float("nan")))
    with pytest.raises(sc.LayerError, match="no submodule 'nope'"):
        net.activations(x, ["nope"])


def test_module_copy_leaves_other_threads_hooks_behind(small):
    """A private copy (surgery's float64 module, the Jacobian descrambler's) taken while
    another thread's `activations` has its hooks on the module must not carry them: the
    copy's functorch passes would feed that thread's capture lists (a PyTorch internal
    assert in torch.cat, seen when two surgery callbacks ran at once)."""
    import threading

    net = sc.Network.from_module(small, input_shape=(2, 6, 6))
    fed: list[torch.Tensor] = []
    handle = small.fc1.register_forward_hook(lambda _m, _i, out: fed.append(out))
    try:
        clone = net.module_copy()
        clone(torch.randn(1, 2, 6, 6))
        assert fed == [] and all(not m._forward_hooks for m in clone.modules())
    finally:
        handle.remove()
    # and the copy waits for a hooked pass in progress (it holds hook_lock)
    done = threading.Event()
    with net.hook_lock:
        worker = threading.Thread(target=lambda: (net.module_copy(), done.set()))
        worker.start()
        assert not done.wait(0.2)
    worker.join(5)
    assert done.is_set()


def test_activations_capture_only_their_own_forward_pass(small):
    """Another thread's plain forward pass during a hooked one is not captured."""
    import threading

    net = sc.Network.from_module(small, input_shape=(2, 6, 6))
    x = torch.randn(3, 2, 6, 6)
    original = small.conv.forward

    def slow_conv(h):  # while the hooked pass sits in conv, another thread runs fc1
        other = threading.Thread(target=lambda: small.fc1(torch.randn(7, 48)))
        other.start()
        other.join()
        return original(h)

    small.conv.forward = slow_conv
    try:
        acts = net.activations(x, ["fc1"])
    finally:
        small.conv.forward = original
    torch.testing.assert_close(acts["fc1"], small.fc1(small.conv(x).flatten(1)).detach())


def test_weights_only_network_cannot_run():
    net = sc.Network(DictSource({"w": torch.randn(3, 4)}), name="w")
    assert not net.executable
    with pytest.raises(sc.ExecutionError, match="weights only"):
        net.forward(torch.randn(1, 4))


def test_heuristic_kinds_and_not_viewable_reasons():
    tensors = {
        "encoder.layer.0.attention.query.weight": torch.randn(6, 6),
        "encoder.layer.0.attention.query.bias": torch.randn(6),
        "embeddings.word_embeddings.weight": torch.randn(20, 6),
        "conv.weight": torch.randn(4, 2, 3),
        "pos": torch.randn(1, 5, 6),
        "empty.weight": torch.zeros(0, 4),
        "ids": torch.arange(6).reshape(2, 3),
        "half.weight": torch.randn(3, 4).to(torch.bfloat16),
        "norm.weight": torch.ones(6),
    }
    net = sc.Network(DictSource(tensors), name="t")
    by = {layer.name: layer for layer in net.layers}
    assert "norm" not in by  # rank-1 tensors are not layers
    assert by["encoder.layer.0.attention.query"].kind == "linear"
    assert by["encoder.layer.0.attention.query"].bias == "encoder.layer.0.attention.query.bias"
    assert by["embeddings.word_embeddings"].kind == "embedding"
    assert by["conv"].kind == "conv1d" and by["conv"].matrix_shape == (4, 6)
    assert by["conv"].views == ("unfolded", "kernels")
    assert net.matrix("conv", view="kernels").shape == (8, 3)
    assert net.view_info("conv", view="kernels").col_image_shape is None
    assert by["pos"].kind == "tensor" and by["pos"].matrix_shape == (1, 30)
    assert "empty" in by["empty"].note
    assert "int64" in by["ids"].note
    assert by["half"].dtype == "bfloat16" and by["half"].matrix_shape == (3, 4)
    assert net.matrix("half").dtype == torch.float32


def test_conv_transpose_matrix_is_out_by_in():
    mod = nn.Sequential(nn.ConvTranspose2d(3, 5, 2))
    net = sc.Network.from_module(mod, input_shape=(3, 4, 4))
    layer = net.layers[0]
    assert layer.kind == "conv_transpose2d" and layer.matrix_shape == (5, 12)
    assert net.matrix("0").shape == (5, 12)


def test_view_info_axes_and_images():
    mod = nn.Sequential(nn.Linear(64, 10), nn.SELU(), nn.Linear(10, 5))
    t = np.linspace(0, 1, 64)
    out = np.arange(5.0)
    net = sc.Network.from_module(
        mod,
        input_shape=(64,),
        image_shape=(8, 8),
        input_axis=sc.Axis("time", "µs", t),
        output_axis=sc.Axis("distance", "nm", out),
    )
    first = net.view_info("0")
    assert first.col_image_shape == (8, 8) and first.col_axis.label == "time"
    assert first.row_axis is None
    last = net.view_info("2")
    assert last.col_image_shape is None and last.col_axis is None
    assert last.row_axis.unit == "nm"


# ------------------------------------------------------------------ content keys
def _save(path, tensors):
    from safetensors.torch import save_file

    save_file(tensors, str(path))
    return path


def test_content_key_stable_across_reopen_and_content_sensitive(tmp_path):
    g = torch.Generator().manual_seed(0)
    tensors = {
        "a.weight": torch.randn(6, 4, generator=g),
        "b.weight": torch.randn(3, 6, generator=g),
    }
    p1 = _save(tmp_path / "one.safetensors", tensors)
    p2 = _save(tmp_path / "two.safetensors", tensors)  # same content, another file
    k1 = sc.load_model(p1).content_key()
    assert sc.load_model(p1).content_key() == k1  # reopened
    assert sc.load_model(p2).content_key() == k1
    changed = dict(tensors)
    changed["b.weight"] = changed["b.weight"].clone()
    changed["b.weight"][0, 0] += 1e-3
    assert sc.load_model(_save(tmp_path / "three.safetensors", changed)).content_key() != k1


def test_content_key_is_memoised_and_matrix_key_matches_tensor_key(small, monkeypatch):
    net = sc.Network.from_module(small, input_shape=(2, 6, 6))
    key = net.content_key()
    assert key.startswith("svdscope:")
    # memoised: later calls never hash again
    monkeypatch.setattr("svdcore.network.tensor_key", lambda t: pytest.fail("rehashed"))
    assert net.content_key() == key
    monkeypatch.undo()
    assert net.matrix_key("fc1") == sc.cache.tensor_key(net.matrix("fc1"))
    other = Small()
    with torch.no_grad():
        other.load_state_dict(small.state_dict())
        other.fc2.bias[0] += 1.0
    assert sc.Network.from_module(other, input_shape=(2, 6, 6)).content_key() != key


def test_content_key_of_weights_only_and_module_networks_differ(small):
    weights = sc.Network(DictSource(dict(small.state_dict())), name="w")
    module = sc.Network.from_module(small, input_shape=(2, 6, 6))
    assert weights.content_key() != module.content_key()
    assert (
        weights.content_key()
        == sc.Network(DictSource(dict(small.state_dict())), name="x").content_key()
    )
