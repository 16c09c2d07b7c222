"""The heads figure: one heatmap row per head, log10 of each circuit's singular values."""

from __future__ import annotations

import numpy as np

from app.figures.heads import heads_figure


def test_rows_are_heads_and_values_are_log_sigma():
    qk = [np.array([4.0, 2.0, 1.0]), np.array([8.0, 0.0, 0.0])]
    ov = [np.array([1.0, 0.1, 0.01]), np.array([2.0, 1.0, 0.5])]
    fig = heads_figure(qk, ov, kv_heads=[0, 0], title="t")
    assert len(fig.data) == 2
    z = np.asarray(fig.data[0].z, dtype=float)
    np.testing.assert_allclose(z[0], np.log10(qk[0]))
    assert z[1, 0] == np.log10(8.0) and np.isnan(z[1, 1:]).all()  # rank one: no log of 0
    np.testing.assert_allclose(np.asarray(fig.data[1].z, dtype=float)[0], [0.0, -1.0, -2.0])
    assert fig.data[0].colorbar.x < fig.layout.xaxis2.domain[0]  # beside its own panel
    only_qk = heads_figure(qk, None, kv_heads=[0, 1])
    assert len(only_qk.data) == 1
