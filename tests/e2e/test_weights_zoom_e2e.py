"""Zooming into a large weight matrix in a real browser: the server redraws the zoomed
window at one cell per weight over the pooled whole, and a double-click's autorange brings
the pooled whole back."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dash.testing.wait import until
from e2e_helpers import screenshot, settle, wait_graph, wait_layer_names
from safetensors.torch import save_file

from app import ids
from app.config import AppConfig
from app.main import create_app

pytestmark = pytest.mark.e2e

_RELAYOUT_JS = """
const gd = document.querySelector('#%s .js-plotly-plot');
Plotly.relayout(gd, arguments[0]);
"""

_VALUE_JS = """
const gd = document.querySelector('#%s .js-plotly-plot');
const z = gd._fullData[1].z;
return [z.length, z[0].length, Number(z[arguments[0]][arguments[1]])];
"""


def test_zoom_redraws_the_window_at_one_cell_per_weight(dash_duo, tmp_path):
    W = torch.randn(1024, 1536, generator=torch.Generator().manual_seed(3))
    path = tmp_path / "wide.safetensors"
    save_file({"proj.weight": W}, str(path))
    app = create_app(AppConfig(models=[str(path)], upload_dir=tmp_path / "up"))
    dash_duo.driver.set_window_size(1400, 1100)
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?tab=weights")
    wait_layer_names(dash_duo)
    whole = wait_graph(dash_duo, ids.GRAPH_WEIGHTS_HEATMAP, lambda g: g["traces"][0]["rows"] == 342)
    assert (whole["traces"][0]["rows"], whole["traces"][0]["cols"]) == (342, 384)  # pooled 3x4
    assert len(whole["traces"]) == 1
    settle(dash_duo)

    # a box zoom onto rows 200..263, columns 1000..1099
    box = {"xaxis.range": [999.5, 1099.5], "yaxis.range": [263.5, 199.5]}
    dash_duo.driver.execute_script(_RELAYOUT_JS % ids.GRAPH_WEIGHTS_HEATMAP, box)
    zoomed = wait_graph(dash_duo, ids.GRAPH_WEIGHTS_HEATMAP, lambda g: len(g["traces"]) == 2)
    assert "one cell per weight" in zoomed["title"]
    rows, cols, value = dash_duo.driver.execute_script(
        _VALUE_JS % ids.GRAPH_WEIGHTS_HEATMAP, 10, 20
    )
    assert (rows, cols) == (64, 100)
    assert value == pytest.approx(float(W[210, 1020]), rel=1e-6)
    screenshot(dash_duo, tmp_path, "weights-zoom.png")

    # autorange (what a double-click does): the pooled whole again
    dash_duo.driver.execute_script(
        _RELAYOUT_JS % ids.GRAPH_WEIGHTS_HEATMAP, {"xaxis.autorange": True, "yaxis.autorange": True}
    )
    wait_graph(
        dash_duo,
        ids.GRAPH_WEIGHTS_HEATMAP,
        lambda g: len(g["traces"]) == 1 and g["traces"][0]["rows"] == 342,
    )
    until(lambda: dash_duo.get_logs() == [], timeout=5)
    assert np.isfinite(value)
