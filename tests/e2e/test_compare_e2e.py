"""The Compare tab in a real browser: ILR (ND, ND) fc1 against its (ND, Reg) sibling by
default, the figures and numbers, the model itself as a check (all angles 0), the choice in
the URL, a click on another layer, and a second model without a layer of that shape."""

from __future__ import annotations

import pytest
from dash.testing.wait import until
from e2e_helpers import (
    choose_option,
    click_layer,
    screenshot,
    settle,
    text_of,
    wait_graph,
    wait_layer_names,
)

from app import ids
from app.config import AppConfig
from app.main import create_app

pytestmark = pytest.mark.e2e


def _stat(dash_duo, key: str) -> str:
    return text_of(dash_duo, f"#{ids.stat_id('compare', key)}")


def test_compare_two_trainings_itself_and_a_misfit(dash_duo, tmp_path):
    models = ["ilr-biexp-ndnd", "ilr-biexp-ndreg", "digits"]
    app = create_app(AppConfig(models=models, upload_dir=tmp_path / "up"))
    dash_duo.driver.set_window_size(1400, 1600)
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?model=ilr-biexp-ndnd&layer=fc1&tab=compare")
    wait_layer_names(dash_duo, at_least=4)

    # default: the sibling training, same layer
    dash_duo.wait_for_contains_text(f"#{ids.DROPDOWN_COMPARE_MODEL}", "(ND, Reg)", timeout=30)
    dash_duo.wait_for_contains_text(f"#{ids.DIV_COMPARE_HINT}", "B: ilr-biexp-ndreg › fc1")
    spectra = wait_graph(dash_duo, ids.GRAPH_COMPARE_SPECTRA, lambda g: len(g["traces"]) == 3)
    assert spectra["ytype"] == "log"
    overlap = wait_graph(dash_duo, ids.GRAPH_COMPARE_OVERLAP, lambda g: len(g["traces"]) == 4)
    assert [t["type"] for t in overlap["traces"]] == ["heatmap", "heatmap", "scatter", "scatter"]
    wait_graph(dash_duo, ids.GRAPH_COMPARE_DIFF, lambda g: g["traces"][0]["type"] == "heatmap")
    rel = float(_stat(dash_duo, "rel"))
    assert 0.1 < rel < 5.0  # two trainings: different weights
    assert float(_stat(dash_duo, "right-angle").rstrip("°")) > 1.0
    screenshot(dash_duo, tmp_path, "compare.png")

    # the model against itself: no difference, every principal angle 0
    choose_option(dash_duo, ids.DROPDOWN_COMPARE_MODEL, "ilr-biexp-ndnd")
    until(lambda: _stat(dash_duo, "rel") == "0", timeout=30)
    for side in ("left-angle", "right-angle"):  # 0 up to rounding (about 1e-14 degrees)
        assert abs(float(_stat(dash_duo, side).rstrip("°"))) < 1e-9
    until(lambda: "compare=ilr-biexp-ndnd" in dash_duo.driver.current_url, timeout=20)

    # another layer of A: B follows with the layer of the same name
    click_layer(dash_duo, "fc3")
    dash_duo.wait_for_contains_text(f"#{ids.DIV_COMPARE_HINT}", "B: ilr-biexp-ndnd › fc3")
    until(lambda: "compare_layer=fc3" in dash_duo.driver.current_url, timeout=20)

    # a second model without a layer of this shape: a message, no figures, nothing broken
    choose_option(dash_duo, ids.DROPDOWN_COMPARE_MODEL, "digits —")
    dash_duo.wait_for_contains_text(
        f"#{ids.DIV_COMPARE_ALERT}", "has no layer with the shape of fc3", timeout=30
    )
    settle(dash_duo)
    assert dash_duo.get_logs() == []
