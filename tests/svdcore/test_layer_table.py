"""sc.layer_rows: one row per tensor, in order; the summary asked with compute=False past
the element budget, not at all past the layer budget; an unusable layer named in its row
while the others are still listed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import svdcore as sc


def _net(nan_layer: bool = False) -> sc.Network:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 30), torch.nn.Linear(30, 3)
    )
    if nan_layer:
        with torch.no_grad():
            model[2].weight[0, 0] = float("nan")
    return sc.Network.from_module(model, input_shape=(6,), name="toy")


def _summary(net: sc.Network, asked: list):
    def summary(info: sc.LayerInfo, compute: bool) -> sc.SpectrumSummary | None:
        asked.append((info.name, compute))
        return sc.spectrum_summary(net.matrix(info.name)) if compute else None

    return summary


def test_every_tensor_gets_a_row_with_the_engine_s_own_summary():
    net, asked = _net(), []
    rows = sc.layer_rows(net, summary=_summary(net, asked))
    assert [r.info.name for r in rows] == [i.name for i in net.layers]
    assert all(compute for _, compute in asked) and len(asked) == len(rows)
    for row in rows:
        W = net.matrix(row.info.name).double().numpy()
        s = np.linalg.svd(W, compute_uv=False)
        assert row.summary is not None and row.error is None and not row.skipped
        # float32 weights: the engine works in their precision (relative 1e-6 stated)
        assert row.summary.condition_number == pytest.approx(s[0] / s[-1], rel=1e-6)


def test_the_element_budget_asks_without_computing_and_the_layer_budget_asks_nothing():
    net, asked = _net(), []
    sizes = {i.name: i.matrix_shape[0] * i.matrix_shape[1] for i in net.layers}
    rows = sc.layer_rows(net, summary=_summary(net, asked), max_elements=100, max_layers=1)
    assert sizes == {"0": 24, "2": 120, "3": 90}
    # "0" is computed (the one layer of the layer budget); "2" is over the element budget:
    # asked, not computed; "3" would be the second computed layer: not asked at all
    assert asked == [("0", True), ("2", False)]
    assert [r.summary is not None for r in rows] == [True, False, False]
    assert [r.skipped for r in rows] == [False, False, True]


def test_an_unusable_layer_is_named_and_the_others_are_listed():
    net, asked = _net(nan_layer=True), []
    rows = sc.layer_rows(net, summary=_summary(net, asked))
    by_name = {r.info.name: r for r in rows}
    assert by_name["2"].summary is None and by_name["2"].error
    assert "NaN" in by_name["2"].error or "nan" in by_name["2"].error.lower()
    assert by_name["0"].summary is not None and by_name["3"].summary is not None
