"""The Model overview tab in a real browser: the spectral table of digits-5layer with its
alpha values, the sparklines, the CSV download, and a row click that opens the layer."""

from __future__ import annotations

from pathlib import Path

import pytest
from dash.testing.wait import until
from e2e_helpers import screenshot, settle, wait_graph, wait_layer_names

from app import ids
from app.config import AppConfig
from app.main import create_app
from svdcore.esd import TABLE_COLUMNS

pytestmark = pytest.mark.e2e


def _cells(dash_duo, column: str) -> list:
    return dash_duo.find_elements(f"#{ids.TABLE_OVERVIEW_LAYERS} td[data-dash-column='{column}']")


def _texts(dash_duo, column: str) -> list[str]:
    return [c.text for c in _cells(dash_duo, column)]


def test_overview_table_download_and_row_click(dash_duo, tmp_path):
    app = create_app(AppConfig(models=["digits", "digits-5layer"], upload_dir=tmp_path / "up"))
    dash_duo.driver.set_window_size(1400, 1300)
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?model=digits-5layer&tab=overview")
    wait_layer_names(dash_duo, at_least=5)
    until(lambda: len(_texts(dash_duo, "name")) == 5, timeout=30)
    assert _texts(dash_duo, "name") == ["fc1", "fc2", "fc3", "fc4", "fc5"]
    alphas = [float(t) for t in _texts(dash_duo, "alpha")]
    assert all(1.0 < a < 10.0 for a in alphas)
    g = wait_graph(dash_duo, ids.GRAPH_OVERVIEW_SPARKLINES, lambda g: len(g["traces"]) == 5)
    assert g["ytype"] == "log"
    assert any("fc3 · α=" in a for a in g["annotations"])
    settle(dash_duo)
    screenshot(dash_duo, tmp_path, "overview.png")

    # the CSV download: a file named after the model, a header and one line per layer
    dash_duo.find_element(f"#{ids.BUTTON_OVERVIEW_CSV}").click()
    target = Path(dash_duo.download_path) / "digits-5layer-spectral-table.csv"
    until(lambda: target.exists() and target.stat().st_size > 0, timeout=20)
    lines = target.read_text().strip().splitlines()
    assert lines[0].split(",") == list(TABLE_COLUMNS)
    assert len(lines) == 6

    # a click on the row of fc3 opens that layer in the Weights tab
    next(c for c in _cells(dash_duo, "name") if c.text == "fc3").click()
    dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", "fc3", timeout=20)
    until(lambda: "layer=fc3" in dash_duo.driver.current_url, timeout=20)
    assert "tab=overview" not in dash_duo.driver.current_url
    wait_graph(dash_duo, ids.GRAPH_WEIGHTS_HEATMAP, lambda g: g["traces"][0]["type"] == "heatmap")
    settle(dash_duo)
    assert dash_duo.get_logs() == []
