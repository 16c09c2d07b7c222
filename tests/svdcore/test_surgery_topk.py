"""svdcore.surgery.spectral_surgery(rank=k): the matrix-free top-k surgery on CNNs with
BatchNorm and skip connections (ReLU, LeakyReLU, SiLU), against the exact surgery: the
identity sum(alpha_k) + rest + bypass + bias = f(x), the rest term, batch-8 archives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import svdcore as sc
from svdcore.surgery import prune, spectral_surgery

SHAPE = (3, 10, 10)


class _Block(nn.Module):
    def __init__(self, channels: int, act: type[nn.Module]):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.act = act()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        return self.act(self.bn2(self.conv2(self.act(self.bn1(self.conv1(x))))) + x)


class _ResCNN(nn.Module):
    """stem (conv, BN, act) -> residual block -> pool -> fc: a skip around block.conv1."""

    def __init__(self, act: type[nn.Module]):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), act())
        self.block = _Block(6, act)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(6 * 5 * 5, 7)

    def forward(self, x):
        return self.fc(self.pool(self.block(self.stem(x))).flatten(1))


def _cnn(act: type[nn.Module], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    module = _ResCNN(act)
    with torch.no_grad():  # eval-mode BatchNorm with statistics that matter
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return module.eval()


def _x(seed: int = 1) -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("act", [nn.ReLU, nn.LeakyReLU, nn.SiLU])
@pytest.mark.parametrize("split", ["stem", "block.conv1"])
def test_top_k_adds_up_to_the_output(act, split):
    module = _cnn(act)
    net = sc.Network.from_module(module, input_shape=SHAPE)
    x = _x()
    res = spectral_surgery(net, x, split=split, rank=12)
    with torch.no_grad():
        y = module(x[None])[0].double()  # the float32 network itself
    assert not res.exact and res.alpha.shape == (7, 12) and res.components == 300
    assert res.L.numel() == 0  # never formed
    scale = float(torch.linalg.vector_norm(res.y))
    np.testing.assert_allclose(res.y.numpy(), y.numpy(), rtol=1e-5, atol=1e-6 * scale)
    gap = float(torch.linalg.vector_norm(res.reconstruction - res.y))
    assert gap <= 1e-10 * scale  # sum(alpha) + rest + bypass + bias = y, to round-off
    if split == "block.conv1":  # the skip connection goes around it
        assert float(torch.linalg.vector_norm(res.bypass)) > 1e-3 * scale
    else:
        assert float(torch.linalg.vector_norm(res.bypass)) < 1e-10 * scale
    if act is not nn.SiLU:  # piecewise linear: the layers' bias terms (BatchNorm's shift
        # included) account for the whole bias
        assert float(torch.linalg.vector_norm(res.remainder)) < 1e-9 * scale


def test_top_k_agrees_with_the_exact_surgery():
    net = sc.Network.from_module(_cnn(nn.ReLU), input_shape=SHAPE)
    x = _x()
    exact = spectral_surgery(net, x, split="block.conv1")
    top = spectral_surgery(net, x, split="block.conv1", rank=8, power_iterations=6)
    assert exact.exact and exact.rest is None and exact.components == exact.S.shape[0] == 300
    s = exact.S.numpy()
    np.testing.assert_allclose(top.S.numpy(), s[:8], rtol=1e-6)
    # the components with well-separated values: the same vectors and contributions
    gaps = np.minimum(np.abs(np.diff(s[:9]))[:8], np.abs(np.diff(s[:9], prepend=np.inf))[:8])
    separated = np.flatnonzero(gaps > 1e-3 * s[0])
    assert separated.size >= 4
    for i in separated:
        cos = abs(float(top.V[:, i] @ exact.V[:, i]))
        assert np.arccos(min(1.0, cos)) < 1e-4
        column = exact.alpha[:, i].numpy()  # (L u_i) c_i moves with the angle of u_i
        np.testing.assert_allclose(
            top.alpha[:, i].numpy(), column, rtol=0, atol=2e-4 * np.linalg.norm(column)
        )
    # the rest of the spectrum is the exact surgery's remaining components
    np.testing.assert_allclose(
        top.rest.numpy(), exact.alpha[:, 8:].sum(1).numpy(), atol=1e-6 * float(top.y.norm())
    )
    np.testing.assert_allclose(top.bypass.numpy(), exact.bypass.numpy(), atol=1e-10)
    np.testing.assert_allclose(top.bias.numpy(), exact.bias.numpy(), atol=1e-10)
    assert float(top.residuals.max()) < 1e-4 * s[0]  # values err by ~ residual² / gap


def test_a_batch_8_archive_gives_the_batch_1_result(tmp_path):
    module = _cnn(nn.LeakyReLU)
    for batch in (1, 8):
        ep = torch.export.export(module, (torch.randn(batch, *SHAPE),))
        torch.export.save(ep, tmp_path / f"b{batch}.pt2")
    x = _x(2)
    one = spectral_surgery(sc.load_model(tmp_path / "b1.pt2"), x, split="stem", rank=6)
    eight = spectral_surgery(sc.load_model(tmp_path / "b8.pt2"), x, split="stem", rank=6)
    for name in ("y", "S", "alpha", "rest", "bypass", "bias"):
        a, b = getattr(one, name), getattr(eight, name)
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-9 * max(1.0, float(a.abs().max())))


def test_arrays_round_trip_and_prune_drops_the_rest():
    net = sc.Network.from_module(_cnn(nn.ReLU), input_shape=SHAPE)
    res = spectral_surgery(net, _x(), split="stem", rank=5, output=2)
    back = sc.Surgery.from_arrays(**res.to_numpy())
    assert back.components == 300 and not back.exact
    np.testing.assert_allclose(back.reconstruction.numpy(), res.y.numpy(), atol=1e-10)
    pruned = prune(res, 5)
    expected = res.alpha.sum(1) + res.bypass + res.bias
    np.testing.assert_allclose(pruned.y_pruned, expected.numpy(), atol=1e-12)


def test_bad_rank_and_output_are_sentences():
    net = sc.Network.from_module(_cnn(nn.ReLU), input_shape=SHAPE)
    for bad in (0, 2.5, True, "8"):
        with pytest.raises(sc.DataError, match="rank must be a positive integer"):
            spectral_surgery(net, _x(), split="stem", rank=bad)
    with pytest.raises(sc.DataError, match="output index 9 is out of range"):
        spectral_surgery(net, _x(), split="stem", rank=4, output=9)


def test_a_surgery_larger_than_the_memory_is_a_sentence(monkeypatch):
    net = sc.Network.from_module(_cnn(nn.ReLU), input_shape=SHAPE)
    monkeypatch.setattr("svdcore.device.available_memory", lambda device=None: 10_000)
    with pytest.raises(sc.ExecutionError, match=r"exact surgery at stem .* needs about .* rank=k"):
        spectral_surgery(net, _x(), split="stem")
    with pytest.raises(sc.ExecutionError, match=r"top-4 surgery at stem .* 9.8 KiB available"):
        spectral_surgery(net, _x(), split="stem", rank=4)


def test_dataset_similarity_and_depth_take_the_top_k_too():
    from svdcore.surgery import depth_evolution, singular_vector_similarity

    net = sc.Network.from_module(_cnn(nn.ReLU), input_shape=SHAPE)
    xs = torch.stack([_x(s) for s in range(4)])
    exact = singular_vector_similarity(net, xs, split="stem", k=0)
    top = singular_vector_similarity(net, xs, split="stem", k=0, rank=20)
    np.testing.assert_allclose(np.diag(top), 1.0, atol=1e-12)
    # phi_1 up to its sign; s_1 and s_2 are 1.8% apart here, so phi_1 needs a wide basis
    np.testing.assert_allclose(np.abs(top), np.abs(exact), atol=2e-4)
    depth = depth_evolution(net, _x(), splits=["stem", "block.conv1"], rank=3)
    assert [d.split for d in depth] == ["stem", "block.conv1"]
    assert all(not d.exact and d.S.shape == (3,) for d in depth)


def test_progress_runs_over_the_samples_and_a_stop_cancels():
    net = sc.Network.from_module(_cnn(nn.ReLU), input_shape=SHAPE)
    xs = torch.stack([_x(1), _x(2)])
    seen: list[tuple[int, int]] = []
    spectral_surgery(
        net, xs, split="block.conv1", rank=4, power_iterations=1,
        progress=lambda d, t: seen.append((d, t)),
    )  # fmt: skip
    assert seen == [(d, 6) for d in range(1, 7)]  # 3 block steps per sample
    with pytest.raises(sc.ExecutionError, match="cancelled"):
        spectral_surgery(net, xs[0], split="block.conv1", rank=4, should_stop=lambda: True)


def test_float32_products_keep_the_identity_and_the_leading_triplets():
    """precision="float32": products through a float32 copy of the network, the basis and
    every result float64; the parts add up to y (the float32 network's output) to float64
    round-off, and the leading values are the float64 ones to float32 accuracy."""
    net = sc.Network.from_module(_cnn(nn.SiLU), input_shape=SHAPE)
    x = _x()
    f64 = spectral_surgery(net, x, split="block.conv1", rank=6)
    f32 = spectral_surgery(net, x, split="block.conv1", rank=6, precision="float32")
    assert f32.alpha.dtype == f32.rest.dtype == f32.S.dtype == torch.float64
    scale = float(f32.y.abs().max())
    np.testing.assert_allclose(
        f32.reconstruction.numpy(), f32.y.numpy(), rtol=0, atol=1e-12 * scale
    )
    np.testing.assert_allclose(f32.y.numpy(), f64.y.numpy(), rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(f32.S.numpy()[:3], f64.S.numpy()[:3], rtol=1e-5)
    with pytest.raises(sc.DataError, match="is for the top-k surgery"):
        spectral_surgery(net, x, split="block.conv1", precision="float32")
    with pytest.raises(sc.DataError, match="precision must be"):
        spectral_surgery(net, x, split="block.conv1", rank=4, precision="float16")


def test_the_ritz_value_stopping_rule_keeps_the_identity():
    net = sc.Network.from_module(_cnn(nn.ReLU), input_shape=SHAPE)
    full = spectral_surgery(net, _x(), split="stem", rank=4, power_iterations=8)
    early = spectral_surgery(net, _x(), split="stem", rank=4, power_iterations=8, tol=1e-3)
    y = float(early.y.abs().max())
    np.testing.assert_allclose(early.reconstruction.numpy(), early.y.numpy(), atol=1e-10 * y)
    # its leading values agree with the full run to about the tolerance it stopped at
    np.testing.assert_allclose(
        early.S.numpy(), full.S.numpy(), rtol=0, atol=1e-2 * float(full.S[0])
    )
    with pytest.raises(sc.DataError, match="tol must be a number"):
        spectral_surgery(net, _x(), split="stem", rank=4, tol=2.0)
