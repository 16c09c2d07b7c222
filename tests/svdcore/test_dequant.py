"""fp8 checkpoints: block scales (``weight_scale_inv``) and per-tensor / per-channel scales
(``weight_scale``) applied before any analysis, checked against the products computed by
hand in float64; an fp8 weight with no scale is listed with a note saying so; the scale
tensors themselves are named, not analysed; bad scales are refused with a sentence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import svdcore as sc
from svdcore.dequant import block_size, dequantize

E4M3_MAX = 448.0


def _block_grid(s: torch.Tensor, m: int, n: int, b: int = 128) -> torch.Tensor:
    return s.repeat_interleave(b, 0)[:m].repeat_interleave(b, 1)[:, :n]


def _quantize_blocks(W: torch.Tensor, b: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """DeepSeek-style block fp8: one scale per b x b block, max |q| = 448 in each block."""
    m, n = W.shape
    sm, sn = -(-m // b), -(-n // b)
    s = torch.empty(sm, sn)
    for i in range(sm):
        for j in range(sn):
            s[i, j] = W[i * b : (i + 1) * b, j * b : (j + 1) * b].abs().max() / E4M3_MAX
    q = (W / _block_grid(s, m, n, b)).to(torch.float8_e4m3fn)
    return q, s


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    g = torch.Generator().manual_seed(0)
    W = torch.randn(300, 260, generator=g)
    q, s = _quantize_blocks(W)
    c = torch.randn(40, 30, generator=g)
    rows = c.abs().amax(dim=1, keepdim=True) / 57344.0  # e5m2's largest value
    tensors = {
        "blocks.weight": q,
        "blocks.weight_scale_inv": s,
        "tensor.weight": (c / 0.01).to(torch.float8_e4m3fn),
        "tensor.weight_scale": torch.tensor(0.01),
        "channels.weight": (c / rows).to(torch.float8_e5m2),
        "channels.weight_scale": rows,
        "raw.weight": q.clone(),
        "bf16.weight": c.to(torch.bfloat16),
    }
    path = tmp_path_factory.mktemp("fp8") / "fp8.safetensors"
    save_file(tensors, str(path))
    return path, W, tensors


def test_block_scales_dequantize_to_the_products_by_hand(checkpoint):
    path, W, t = checkpoint
    net = sc.load_model(path)
    info = net.layer("blocks")
    assert info.dtype == "float8_e4m3fn" and info.scale == "blocks.weight_scale_inv"
    assert info.note is None and info.matrix_shape == (300, 260)
    want = t["blocks.weight"].double() * _block_grid(t["blocks.weight_scale_inv"], 300, 260)
    got = net.matrix("blocks", dtype=torch.float64)
    assert torch.equal(got, want)  # fp8 x float32 is exact in float64
    # and it is the original weight to fp8's precision (3 mantissa bits: 2^-4 relative)
    assert float(((got - W.double()).abs() / W.abs().max()).max()) < 2**-4
    assert torch.equal(net.tensor("blocks"), t["blocks.weight"])  # the raw stored tensor
    s = sc.spectrum_summary(net.matrix("blocks"))
    np.testing.assert_allclose(
        s.singular_values, np.linalg.svd(want.numpy(), compute_uv=False), rtol=1e-6
    )


def test_per_tensor_and_per_channel_scales(checkpoint):
    path, _, t = checkpoint
    net = sc.load_model(path)
    want = t["tensor.weight"].double() * t["tensor.weight_scale"].double()
    assert torch.equal(net.matrix("tensor", dtype=torch.float64), want)
    assert net.layer("channels").dtype == "float8_e5m2"
    want = t["channels.weight"].double() * t["channels.weight_scale"].double()
    assert torch.equal(net.matrix("channels", dtype=torch.float64), want)


def test_the_scales_are_named_and_a_weight_without_one_is_flagged(checkpoint):
    path, _, _ = checkpoint
    net = sc.load_model(path)
    scale = net.layer("blocks.weight_scale_inv")
    assert scale.kind == "scale" and not scale.viewable and "blocks.weight" in scale.note
    raw = net.layer("raw")
    assert raw.viewable and raw.scale is None and "without a scale" in raw.note
    rows = {r.name: r for r in sc.esd.layer_spectra(net)}
    assert "without a scale" in rows["raw"].note and rows["raw"].summary is not None
    assert rows["bf16"].note == "" and net.layer("bf16").dtype == "bfloat16"
    # every layer with a matrix gets its row; nothing is skipped for its dtype
    assert all(r.summary is not None for r in rows.values() if r.matrix_shape is not None)


@pytest.mark.parametrize(
    "shape, fragment",
    [((3,), "does not fit"), ((5, 5, 5), "does not fit"), ((1000, 1), "cannot cover")],
)
def test_bad_scales_are_refused(shape, fragment):
    q = torch.ones(300, 260)
    with pytest.raises(sc.DataError, match=fragment):
        dequantize(q, torch.ones(shape))
    with pytest.raises(sc.DataError, match="NaN"):
        dequantize(q, torch.tensor(float("nan")))


def test_block_sizes():
    assert block_size(7168, 56) == 128 and block_size(300, 3) == 128
    assert block_size(100, 1) == 128 and block_size(260, 2) == 130
    with pytest.raises(sc.DataError, match="cannot cover"):
        block_size(10, 11)
