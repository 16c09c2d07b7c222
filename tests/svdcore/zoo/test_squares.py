"""squares-ae, squares-ae-bias: rotated-squares data, data SVD, shipped weights, exact surgery."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import svdcore.zoo as zoo
from svdcore.exceptions import DataError
from svdcore.surgery import spectral_surgery
from svdcore.zoo import squares

NAMES = ["squares-ae", "squares-ae-bias"]
AREA = 32 * 32


def _record(name: str) -> dict:
    return json.loads(zoo.weights_path(name).with_suffix(".json").read_text("utf-8"))


def _test_mse(name: str) -> tuple[float, float]:
    """(test MSE, mean-image baseline MSE) on the 512 test squares of the training recipe."""
    module = zoo.load_module(name)
    x, y = squares.make_data(n=512, seed=squares.DATA_SEED, split="test")
    xtr, _ = squares.make_data(n=4096, seed=squares.DATA_SEED, split="train")
    with torch.no_grad():
        mse = float(((module(x) - y) ** 2).mean())
    return mse, float(((y - xtr.mean(dim=0)) ** 2).mean())


# --------------------------------------------------------------------------- data
def test_make_data_shape_range_and_targets():
    x, y = squares.make_data(n=40, seed=1, split="train")
    assert x.shape == (40, 1, 64, 64) and x.dtype == torch.float32
    assert y is x or torch.equal(x, y)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    # anti-aliased: edge pixels take values strictly between 0 and 1
    assert bool(((x > 0) & (x < 1)).any())
    # the corners of the image are always background (the square's half-diagonal is 22.6)
    assert float(x[:, :, :8, :8].abs().max()) == 0.0


def test_area_is_32x32_at_every_angle():
    angles = np.linspace(0.0, 2.0 * np.pi, 181)
    area = squares.render(angles).sum(axis=(1, 2))
    # measured here 1023.25-1024.13 (std 0.14); over 20000 random angles 1021.0-1027.7 (0.36 %)
    assert area == pytest.approx(AREA, rel=5e-3)
    assert area.std() < 0.5
    x, _ = squares.make_data(n=200, seed=2)
    assert x.sum(dim=(1, 2, 3)).numpy() == pytest.approx(AREA, rel=5e-3)


def test_axis_aligned_square_is_exact_and_rotation_has_period_90_degrees():
    img = squares.render(np.array([0.0]))[0]
    expected = np.zeros((64, 64), dtype=np.float32)
    expected[16:48, 16:48] = 1.0
    np.testing.assert_array_equal(img, expected)
    a = np.array([0.3])
    np.testing.assert_allclose(
        squares.render(a), squares.render(a + np.pi / 2), atol=1.0 / squares.SAMPLES + 1e-6
    )
    # 45 degrees: a diamond, symmetric under transposition and flips
    d = squares.render(np.array([np.pi / 4]))[0]
    np.testing.assert_allclose(d, d.T, atol=2.0 / squares.SAMPLES)
    np.testing.assert_allclose(d, d[::-1, ::-1], atol=2.0 / squares.SAMPLES)
    assert d[32, 32] == 1.0 and d[32, 56] == 0.0 and d[32, 52] > 0.5  # tip at 32 + 22.6


def test_make_data_is_deterministic_with_prefixes_and_distinct_splits():
    a, _ = squares.make_data(n=16, seed=3, split="test")
    b, _ = squares.make_data(n=16, seed=3, split="test")
    assert torch.equal(a, b)
    longer, _ = squares.make_data(n=32, seed=3, split="test")
    assert torch.equal(longer[:16], a)
    other, _ = squares.make_data(n=16, seed=4, split="test")
    train, _ = squares.make_data(n=16, seed=3, split="train")
    assert not torch.equal(a, other) and not torch.equal(a, train)


def test_shifts_move_the_square_but_keep_its_area():
    x, _ = squares.make_data(n=64, seed=0, max_shift=8.0)
    assert x.sum(dim=(1, 2, 3)).numpy() == pytest.approx(AREA, rel=5e-3)
    grid = torch.arange(64, dtype=torch.float32) + 0.5
    mass = x[:, 0].sum(dim=(1, 2))
    cx = (x[:, 0].sum(dim=1) * grid).sum(dim=1) / mass
    cy = (x[:, 0].sum(dim=2) * grid).sum(dim=1) / mass
    assert float((cx - 32).abs().max()) <= 8.05 and float((cy - 32).abs().max()) <= 8.05
    assert float((cx - 32).abs().max()) > 4.0  # the shifts are real
    centred, _ = squares.make_data(n=64, seed=0)
    ccx = (centred[:, 0].sum(dim=1) * grid).sum(dim=1) / centred[:, 0].sum(dim=(1, 2))
    assert float((ccx - 32).abs().max()) < 0.02  # sampling noise: measured <= 0.0072


def test_make_data_rejects_bad_arguments():
    with pytest.raises(DataError, match="split"):
        squares.make_data(n=2, split="all")
    with pytest.raises(DataError, match="n must"):
        squares.make_data(n=0)
    with pytest.raises(DataError, match="max_shift"):
        squares.make_data(n=2, max_shift=20.0)
    with pytest.raises(DataError, match="centres"):
        squares.render(np.zeros(3), centres=np.zeros((2, 2)))


def test_data_svd():
    svd = squares.data_svd(n=512, seed=0, k=4)
    s = svd.singular_values
    assert s.shape == (512,) and np.all(np.diff(s) <= 1e-9) and s[-1] >= 0
    assert svd.vectors.shape == (4, 64, 64)
    flat = svd.vectors.reshape(4, -1)
    np.testing.assert_allclose(flat @ flat.T, np.eye(4), atol=1e-10)
    assert svd.explained[-1] == pytest.approx(1.0)
    # the top singular vector is the disc-like mean: non-negative, invariant under 90° turns
    top = svd.vectors[0]
    assert top.min() > -1e-6
    assert float(np.dot(top.ravel(), np.rot90(top).ravel())) > 0.99
    # the disc holds ~90 % of the energy; then degenerate pairs (sin/cos of 4, 8, ... theta)
    assert 0.8 < svd.explained[0] < 0.95  # measured 0.899
    assert s[1] / s[2] == pytest.approx(1.0, abs=0.05)  # measured 186.0 / 183.8 (n = 1024)
    assert s[3] / s[4] == pytest.approx(1.0, abs=0.05)
    # the right singular vectors diagonalise X^T X
    x, _ = squares.make_data(n=512, seed=0, split="train")
    X = x.reshape(512, -1).double().numpy()
    np.testing.assert_allclose(np.linalg.norm(X @ flat.T, axis=0), s[:4], rtol=1e-9)
    with pytest.raises(DataError, match="k must"):
        squares.data_svd(n=16, k=17)


# --------------------------------------------------------------------------- networks
@pytest.mark.parametrize("name", NAMES)
def test_registered_with_image_inputs(name):
    entry = zoo.get(name)
    assert name in zoo.names()
    assert entry.input_shape == (1, 64, 64) and entry.image_shape == (64, 64)
    assert entry.weights_file == f"{name}.safetensors"
    assert len(entry.description) > 200 and "{" not in entry.description
    net = zoo.load(name)
    assert [layer.name for layer in net.layers] == [f"fc{i}" for i in range(1, 7)]
    assert net.view_info("fc1").col_image_shape == (64, 64)
    children = [n for n, _ in net.module.named_children()]
    assert children == [
        "fc1", "act1", "fc2", "act2", "fc3", "act3", "fc4", "act4", "fc5", "act5", "fc6",
    ]  # fmt: skip
    widths = [tuple(getattr(net.module, f"fc{i}").weight.shape) for i in range(1, 7)]
    assert widths == [(48, 4096), (32, 48), (8, 32), (32, 8), (48, 32), (4096, 48)]


@pytest.mark.parametrize("name", NAMES)
def test_shipped_weights_are_float32_and_small(name):
    path = zoo.weights_path(name)
    assert path.is_file() and path.stat().st_size < 2 * 1024 * 1024
    fresh = zoo.get(name).build()
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        assert keys == set(fresh.state_dict())
        assert all(f.get_tensor(k).dtype == torch.float32 for k in keys)
    has_bias = any(k.endswith("bias") for k in keys)
    assert has_bias == (name == "squares-ae-bias")
    if name == "squares-ae":
        module = zoo.load_module(name)
        assert all(m.bias is None for m in module.modules() if isinstance(m, torch.nn.Linear))
    record = _record(name)
    assert record["name"] == name and record["settings"]["seed"] == 0


@pytest.mark.parametrize(
    ("name", "limit"),
    [
        ("squares-ae", 0.03),  # measured ratio 0.0149 (MSE 0.00037 vs 0.0248)
        ("squares-ae-bias", 0.02),  # measured ratio 0.0063 (MSE 0.00016 vs 0.0248)
    ],
)
def test_reconstructs_far_better_than_the_mean_image(name, limit):
    mse, baseline = _test_mse(name)
    assert mse <= limit * baseline
    metrics = _record(name)["metrics"]
    assert metrics["test_mse"] == pytest.approx(mse, rel=1e-4)
    assert metrics["baseline_mse"] == pytest.approx(baseline, rel=1e-6)
    assert f"{mse:.5f}" in zoo.get(name).description


def test_bias_share():
    plain = _record("squares-ae")["metrics"]["test_bias_share"]
    biased = _record("squares-ae-bias")["metrics"]["test_bias_share"]
    assert plain == pytest.approx(0.0, abs=1e-12)  # positively homogeneous: f(x) = J x
    assert biased > 0.05
    assert f"{biased:.0%}" in zoo.get("squares-ae-bias").description


@pytest.mark.parametrize("name", NAMES)
def test_surgery_at_the_bottleneck_is_exact(name):
    net = zoo.load(name)
    x, _ = zoo.get(name).make_data(n=1, seed=5)
    res = spectral_surgery(net, x[0], split="fc3")
    assert res.S.shape == (8,) and res.alpha.shape == (4096, 8)
    torch.testing.assert_close(res.reconstruction, res.y, atol=1e-9, rtol=0)
    with torch.no_grad():
        out = net.module(x).double().reshape(-1)
    torch.testing.assert_close(res.y, out, atol=1e-5, rtol=0)
    assert float(res.bypass.abs().max()) < 1e-12  # a chain: nothing bypasses fc3
    if name == "squares-ae":
        assert float(res.bias.abs().max()) < 1e-9 and res.layer_bias == {}
    else:
        assert set(res.layer_bias) == {f"fc{i}" for i in range(1, 7)}
        assert float(res.bias.norm()) > 0.05 * float(res.y.norm())
        # piecewise linear: the per-layer bias terms add up to the bias term exactly
        torch.testing.assert_close(sum(res.layer_bias.values()), res.bias, atol=1e-9, rtol=0)
        assert float(res.remainder.abs().max()) < 1e-9


def test_tiny_training_run_writes_loadable_deterministic_weights(tmp_path):
    opts = {"n_train": 128, "n_test": 32, "epochs": 1, "batch_size": 64}
    lines: list[str] = []
    a = zoo.train(
        "squares-ae", out=tmp_path / "a.safetensors", seed=3, progress=lines.append, **opts
    )
    b = zoo.train("squares-ae", out=tmp_path / "b.safetensors", seed=3, **opts)
    wa, wb = load_file(str(a.path)), load_file(str(b.path))
    assert set(wa) == {f"fc{i}.weight" for i in range(1, 7)}
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a.metrics == b.metrics
    assert {"test_mse", "baseline_mse", "mse_ratio", "train_mse", "test_bias_share"} == set(
        a.metrics
    )
    assert lines and "squares-ae" in lines[-1]
    module = squares.build_plain()
    module.load_state_dict(wa, strict=True)
    record = json.loads(a.path.with_suffix(".json").read_text("utf-8"))
    assert record["settings"]["n_train"] == 128 and record["settings"]["seed"] == 3
    c = zoo.train("squares-ae-bias", out=tmp_path / "c.safetensors", **opts)
    squares.build_bias().load_state_dict(load_file(str(c.path)), strict=True)
    assert not list(tmp_path.rglob("*.tmp"))
