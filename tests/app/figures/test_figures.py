"""Figure builders: pure numpy -> plotly, small payloads, zero-centred colour scales."""

from __future__ import annotations

import json
import math

import numpy as np
import plotly.io as pio
import pytest
from dash._utils import to_json

from app.figures import (
    TEMPLATE,
    placeholder_figure,
    pool_max_abs,
    register_template,
    side_gallery,
    spectrum_figure,
    vector_gallery,
    weights_heatmap,
)


def _reference_pool(W: np.ndarray, fr: int, fc: int) -> np.ndarray:
    m, n = W.shape
    out = np.zeros((math.ceil(m / fr), math.ceil(n / fc)), dtype=np.float32)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            block = W[i * fr : (i + 1) * fr, j * fc : (j + 1) * fc]
            out[i, j] = block.flat[np.argmax(np.abs(block))]
    return out


def test_pooling_keeps_the_signed_extreme_of_each_block():
    W = np.zeros((8, 8), dtype=np.float32)
    W[0, 1], W[1, 0] = 5.0, -9.0  # block (0, 0): the negative one is larger in magnitude
    W[6, 7] = 3.0
    pooled = pool_max_abs(W, max_side=4)
    assert (pooled.row_factor, pooled.col_factor) == (2, 2)
    assert pooled.values[0, 0] == -9.0
    assert pooled.values[3, 3] == 3.0
    assert pooled.values[1, 1] == 0.0


def test_pooling_matches_a_reference_on_ragged_shapes():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((101, 37)).astype(np.float32)
    pooled = pool_max_abs(W, max_side=16)
    fr, fc = pooled.row_factor, pooled.col_factor
    assert (fr, fc) == (7, 3)
    assert pooled.values.shape == (15, 13)
    assert max(pooled.values.shape) <= 16
    np.testing.assert_array_equal(pooled.values, _reference_pool(W, fr, fc))
    assert np.abs(pooled.values).max() == np.abs(W).max()


def test_pooling_leaves_small_matrices_alone_and_shows_nan():
    W = np.arange(12, dtype=np.float32).reshape(3, 4)
    pooled = pool_max_abs(W, max_side=4)
    assert not pooled.pooled
    np.testing.assert_array_equal(pooled.values, W)
    W = np.ones((4, 4), dtype=np.float32)
    W[0, 0] = np.nan
    assert np.isnan(pool_max_abs(W, max_side=2).values[0, 0])
    with pytest.raises(ValueError):
        pool_max_abs(np.ones(3))


def test_heatmap_is_centred_at_zero_with_symmetric_limits():
    W = np.array([[1.0, -3.0], [0.5, 2.0]], dtype=np.float32)
    fig = weights_heatmap(W, title="fc1", row_label="output", col_label="input")
    heat = fig.data[0]
    assert heat.type == "heatmap"
    assert heat.zmid == 0 and heat.zmin == -3.0 and heat.zmax == 3.0
    assert fig.layout.yaxis.autorange == "reversed"  # row 0 at the top, like the matrix
    assert fig.layout.xaxis.title.text == "input" and fig.layout.yaxis.title.text == "output"
    assert "w = %{z" in heat.hovertemplate  # exact values on hover for small matrices
    np.testing.assert_array_equal(heat.z, W)
    assert "pooled" not in fig.layout.title.text


def test_heatmap_clips_colour_at_a_percentile_of_the_unpooled_matrix():
    rng = np.random.default_rng(2)
    W = rng.standard_normal((1500, 700)).astype(np.float32)
    W[3, 4] = 80.0  # one outlier would wash out the scale at +-max|w|
    fig = weights_heatmap(W, clip_percentile=99.0)
    heat = fig.data[0]
    expected = float(np.percentile(np.abs(W), 99.0))
    assert heat.zmax == pytest.approx(expected, rel=1e-6) and heat.zmin == -heat.zmax
    assert heat.zmid == 0
    beyond = int(np.count_nonzero(np.abs(W) > expected))
    assert f"99th pct |w|, {beyond} beyond" in fig.layout.title.text
    assert weights_heatmap(W).data[0].zmax == 80.0


def test_heatmap_of_all_zeros_keeps_a_valid_scale():
    heat = weights_heatmap(np.zeros((3, 3), dtype=np.float32)).data[0]
    assert heat.zmin == -1.0 and heat.zmax == 1.0


def test_large_heatmap_is_pooled_float32_and_small_on_the_wire():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((2048, 2048)).astype(np.float32)
    W[1000, 3] = -40.0
    fig = weights_heatmap(W, title="big")
    heat = fig.data[0]
    assert heat.z.shape == (512, 512)
    assert heat.z.min() == -40.0  # the outlier survives pooling with its sign
    assert heat.dx == 4 and heat.dy == 4  # coordinates stay in original indices
    assert "max-abs pooled 4×4" in fig.layout.title.text
    payload = to_json(fig)  # what Dash sends to the browser
    assert len(payload) < 2_000_000, len(payload)
    z = json.loads(payload)["data"][0]["z"]
    assert z["dtype"] == "f4" and "bdata" in z  # base64 float32, not a list of numbers


def test_spectrum_figure_log_axis_tolerance_and_energy():
    s = np.array([4.0, 2.0, 1.0, 0.0])
    energy = np.cumsum(s**2) / np.sum(s**2)
    fig = spectrum_figure(s, energy, tolerance=1e-6, numerical_rank=3, title="t")
    sigma, cum = fig.data
    assert fig.layout.yaxis.type == "log"
    np.testing.assert_array_equal(sigma.x, [1, 2, 3, 4])
    assert np.isnan(sigma.y[3])  # a zero has no place on a log axis
    np.testing.assert_allclose(cum.y, energy, rtol=1e-6)
    shapes_y = sorted(round(shape.y0, 6) for shape in fig.layout.shapes)
    assert shapes_y == [1e-6, 0.9, 0.99]
    assert any("rank 3" in a.text for a in fig.layout.annotations)


def test_vector_gallery_draws_images_with_sigma_titles():
    rng = np.random.default_rng(2)
    V = rng.standard_normal((8, 64)).astype(np.float32)
    sigma = np.linspace(8, 1, 8)
    fig = vector_gallery(V, sigma, symbol="v", image_shape=(8, 8))
    assert len(fig.data) == 8
    for i, trace in enumerate(fig.data):
        assert trace.type == "heatmap" and trace.z.shape == (8, 8)
        assert trace.zmid == 0 and trace.zmin == -trace.zmax
        np.testing.assert_array_equal(trace.z.ravel(), V[i])
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0] == "v<sub>1</sub>   σ = 8" and titles[7] == "v<sub>8</sub>   σ = 1"


def test_vector_gallery_draws_curves_over_a_physical_axis():
    V = np.random.default_rng(3).standard_normal((3, 50)).astype(np.float32)
    t = np.linspace(0, 2.0, 50)
    fig = vector_gallery(V, np.ones(3), image_shape=(7, 7), axis_values=t, axis_title="t (µs)")
    assert [tr.type for tr in fig.data] == ["scatter"] * 3  # 7x7 != 50: falls back to curves
    np.testing.assert_allclose(fig.data[0].x, t, rtol=1e-6)
    assert fig.layout.xaxis.title.text == "t (µs)"


def test_side_gallery_draws_each_side_over_its_own_view_axis():
    from types import SimpleNamespace

    rng = np.random.default_rng(4)
    t = np.linspace(0, 1.0, 30)
    info = SimpleNamespace(
        col_image_shape=(4, 5),
        col_axis=None,
        row_image_shape=None,
        row_axis=SimpleNamespace(values=t),
    )
    vectors = SimpleNamespace(
        right=rng.standard_normal((2, 20)),
        left=rng.standard_normal((2, 30)),
        sigma=[2.0, 1.0],
        info=info,
    )
    right = side_gallery(vectors, "right", title="R")
    assert [tr.type for tr in right.data] == ["heatmap"] * 2
    assert right.layout.annotations[0].text.startswith("v<sub>1</sub>")
    left = side_gallery(vectors, "left", title="L", axis_title="t (s)")
    assert [tr.type for tr in left.data] == ["scatter"] * 2
    np.testing.assert_allclose(left.data[0].x, t, rtol=1e-6)
    assert left.layout.annotations[0].text.startswith("u<sub>1</sub>")
    with pytest.raises(ValueError, match="side"):
        side_gallery(vectors, "top", title="")


def test_one_template_registered_once():
    assert register_template() == TEMPLATE == register_template()
    assert TEMPLATE in pio.templates
    assert placeholder_figure("hello").layout.annotations[0].text == "hello"
    assert weights_heatmap(np.eye(2)).layout.template.layout.font.size == 12


def test_heatmap_uses_physical_axis_values_when_given():
    W = np.ones((4, 6), dtype=np.float32)
    t = np.linspace(0.0, 2.0, 6)
    heat = weights_heatmap(W, col_label="time (µs)", col_values=t).data[0]
    np.testing.assert_allclose(heat.x, t, rtol=1e-6)
    assert heat.y is None and heat.y0 == 0 and heat.dy == 1
    big = weights_heatmap(np.ones((2, 1024), dtype=np.float32), col_values=np.arange(1024.0))
    np.testing.assert_array_equal(big.data[0].x, np.arange(0, 1024, 2))  # block starts


def test_rank_tolerance_label_sits_at_the_line_on_the_log_axis():
    fig = spectrum_figure(np.array([10.0, 1.0]), np.array([0.99, 1.0]), tolerance=1e-3)
    label = next(a for a in fig.layout.annotations if "rank tolerance" in a.text)
    assert label.y == pytest.approx(-3.0)  # log10(1e-3): annotation units on a log axis
