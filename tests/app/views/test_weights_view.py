"""Weights view zoom without a browser: relayout events become index windows, and a window
is redrawn at one cell per weight over the pooled whole, on one colour scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.figures import pool_max_abs, weights_heatmap
from app.views.weights import MAX_SIDE, window_from_relayout

SHAPE = (1000, 3000)


@pytest.mark.parametrize(
    "event, previous, expected",
    [
        # a box zoom: cell i covers [i - 0.5, i + 0.5]; y runs downwards (reversed axis)
        (
            {
                "xaxis.range[0]": 99.5,
                "xaxis.range[1]": 163.5,
                "yaxis.range[0]": 20.4,
                "yaxis.range[1]": 9.6,
            },
            None,
            (10, 21, 100, 164),
        ),
        ({"xaxis.range": [-50, 40.2]}, None, (0, 1000, 0, 41)),  # clipped at 0, rows all
        ({"xaxis.range": [10, 20]}, None, (0, 1000, 10, 21)),  # cells 10..20 show
        ({"xaxis.range": [10, 20]}, (5, 50, 0, 3000), (5, 50, 10, 21)),  # rows kept
        ({"xaxis.autorange": True, "yaxis.autorange": True}, (5, 50, 10, 21), None),
        ({"yaxis.autorange": True}, (5, 50, 10, 21), (0, 1000, 10, 21)),
        ({"autosize": True}, (5, 50, 10, 21), (5, 50, 10, 21)),  # nothing about ranges
        ({"dragmode": "pan"}, None, None),
        (None, (1, 2, 3, 4), (1, 2, 3, 4)),
        ({"xaxis.range": [float("nan"), 3]}, None, None),
        ({"xaxis.range": [-10, 5000], "yaxis.range": [2000, -3]}, (1, 2, 3, 4), None),
    ],
)
def test_window_from_relayout(event, previous, expected):
    assert window_from_relayout(event, SHAPE, previous) == expected


def _matrix(m: int, n: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((m, n)).astype(np.float32)


def test_windowed_heatmap_shows_every_weight_of_a_small_window():
    W = _matrix(1200, 2000)
    W[700, 1500] = 50.0  # an outlier outside the window sets the shared colour limit
    fig = weights_heatmap(W, title="w", max_side=MAX_SIDE, window=(100, 164, 300, 400))
    context, detail = fig.data
    np.testing.assert_array_equal(np.asarray(detail.z), W[100:164, 300:400])
    assert (detail.x0, detail.dx, detail.y0, detail.dy) == (300, 1, 100, 1)
    assert context.zmax == detail.zmax == 50.0 and context.zmin == -50.0
    expected = pool_max_abs(W, max_side=160)
    np.testing.assert_array_equal(np.asarray(context.z), expected.values)
    assert fig.layout.xaxis.range == (299.5, 399.5)
    assert fig.layout.yaxis.range == (163.5, 99.5)  # row 0 at the top
    assert "one cell per weight" in fig.layout.title.text


def test_windowed_heatmap_pools_a_large_window_and_clips_bad_bounds():
    W = _matrix(4096, 1024)
    fig = weights_heatmap(W, max_side=MAX_SIDE, window=(-5, 5000, 0, 600))
    detail = fig.data[1]
    assert np.asarray(detail.z).shape == (410, 300)  # 4096 rows by 10, 600 columns by 2
    assert "max-abs pooled 10×2" in fig.layout.title.text
    # the pooled window keeps the largest |w| of each block, with its sign
    np.testing.assert_array_equal(np.asarray(detail.z), pool_max_abs(W[:, :600], MAX_SIDE).values)


def test_window_is_ignored_when_the_matrix_fits_or_has_physical_axes():
    small = _matrix(80, 256)
    fig = weights_heatmap(small, window=(0, 10, 0, 10))
    assert len(fig.data) == 1 and np.asarray(fig.data[0].z).shape == (80, 256)
    big = _matrix(600, 700)
    fig = weights_heatmap(big, window=(0, 10, 0, 10), col_values=np.arange(700) * 0.1)
    assert len(fig.data) == 1


def test_payload_stays_under_two_megabytes():
    """What the page receives for a 4096 x 4096 layer, whole or zoomed, as Dash serialises
    it (base64 arrays with every '/' escaped: about 1.45 times the raw base64 for a trained-
    like decaying matrix, whose float exponents repeat)."""
    from dash._utils import to_json

    gen = torch.Generator().manual_seed(0)
    decay = torch.logspace(0, -3, 4096)
    Q = torch.linalg.qr(torch.randn(4096, 4096, generator=gen)).Q
    trained_like = ((torch.randn(4096, 4096, generator=gen) * decay) @ Q).numpy()
    for W in (_matrix(4096, 4096), trained_like):
        whole = weights_heatmap(W, max_side=MAX_SIDE)
        zoomed = weights_heatmap(W, max_side=MAX_SIDE, window=(0, 2048, 0, 2048))
        assert len(to_json(whole)) < 2_000_000
        assert len(to_json(zoomed)) < 2_000_000


def test_a_restarting_axis_falls_back_to_indices():
    W = _matrix(32, 128)
    t = np.concatenate([np.linspace(0, 800, 64), np.linspace(0, 800, 64)])  # ILR's halves
    fig = weights_heatmap(W, col_values=t, col_label="time (ms)")
    assert fig.data[0].x is None and fig.data[0].x0 == 0  # indices: no halves on top
    assert fig.layout.xaxis.title.text == "time index (the axis restarts)"
    fine = weights_heatmap(W, col_values=np.arange(128) * 6.25, col_label="time (ms)")
    assert len(fine.data[0].x) == 128 and fine.layout.xaxis.title.text == "time (ms)"
