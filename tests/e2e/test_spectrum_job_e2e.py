"""A large layer's Spectrum tab in a real browser: the randomized first view with its
bounds, the full SVD started by itself as a background job with progress, Cancel keeping
the first view, and a restart that ends in the full spectrum and the ESD panel."""

from __future__ import annotations

import pytest
import torch
from dash.testing.wait import until
from e2e_helpers import screenshot, settle, text_of, wait_graph, wait_layer_names
from safetensors.torch import save_file

import app.services.layers as services_module
from app import ids
from app.config import AppConfig
from app.main import create_app

pytestmark = pytest.mark.e2e


def _visible(dash_duo, element_id: str) -> bool:
    return dash_duo.find_element(f"#{element_id}").is_displayed()


def test_first_view_then_full_spectrum_with_cancel(dash_duo, tmp_path, monkeypatch):
    # "large" from 200 on here, so that a test-sized layer (2000 x 1800, several seconds of
    # full SVD in a one-thread job) takes the large-layer path
    monkeypatch.setattr(services_module, "SPECTRUM_FULL_MAX_SIDE", 200)
    torch.manual_seed(1)
    path = tmp_path / "big.safetensors"
    W = torch.randn(2000, 1800) * torch.linspace(2.0, 0.05, 1800)
    save_file({"proj.weight": W.contiguous()}, str(path))
    app = create_app(AppConfig(models=[str(path)], upload_dir=tmp_path / "up"))
    dash_duo.driver.set_window_size(1400, 1100)
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?tab=spectrum")
    wait_layer_names(dash_duo)

    first = wait_graph(dash_duo, ids.GRAPH_SPECTRUM_VALUES, lambda g: "first view" in g["title"])
    assert first["traces"][0]["n"] == 64  # the top 64 of 1800, randomized
    dash_duo.wait_for_contains_text(f"#{ids.TEXT_SPECTRUM_FULL_NOTE}", "randomized sketch")
    until(lambda: _visible(dash_duo, ids.JOB_SPECTRUM.progress_div), timeout=20)
    assert dash_duo.find_element(f"#{ids.stat_id('spectrum', 'energy')}").text.startswith("≥")
    dash_duo.driver.save_screenshot(str(tmp_path / "spectrum-first-view.png"))  # job running
    dash_duo.wait_for_contains_text(f"#{ids.TEXT_ESD_NOTE}", "full spectrum has been computed")

    # Cancel: the job stops, the first view stays, the page says so
    dash_duo.find_element(f"#{ids.JOB_SPECTRUM.cancel}").click()
    dash_duo.wait_for_contains_text(f"#{ids.JOB_SPECTRUM.status}", "cancelled", timeout=20)
    until(lambda: not _visible(dash_duo, ids.JOB_SPECTRUM.progress_div), timeout=20)
    assert "first view" in wait_graph(dash_duo, ids.GRAPH_SPECTRUM_VALUES, bool)["title"]

    # start it again: the full spectrum replaces the first view
    dash_duo.find_element(f"#{ids.JOB_SPECTRUM.run}").click()
    full = wait_graph(
        dash_duo,
        ids.GRAPH_SPECTRUM_VALUES,
        lambda g: "first view" not in g["title"] and g["traces"][0]["n"] == 1800,
        timeout=120,
    )
    assert full["ytype"] == "log"
    screenshot(dash_duo, tmp_path, "spectrum-full-after-job.png")
    until(lambda: not _visible(dash_duo, ids.DIV_SPECTRUM_FULL), timeout=20)
    cond = dash_duo.find_element(f"#{ids.stat_id('spectrum', 'cond')}").text
    # the ESD panel follows the job, with the shuffled copy the job computed after the SVD
    shuffled = f"#{ids.stat_id('esd', 'rand-distance')}"
    until(lambda: text_of(dash_duo, shuffled).split()[-1] not in ("…", ""), timeout=60)
    assert 0 <= float(text_of(dash_duo, shuffled).split()[-1]) <= 1
    assert text_of(dash_duo, f"#{ids.TEXT_ESD_NOTE}") == ""
    assert float(cond) > 1.0
    # the sidebar's layer table shows the layer's κ now that its full spectrum is known
    cell = f"#{ids.TABLE_LAYER_LIST} td[data-dash-column='cond']"
    until(lambda: dash_duo.find_element(cell).text.strip() != "", timeout=20)
    assert float(dash_duo.find_element(cell).text) == pytest.approx(float(cond), rel=1e-2)
    settle(dash_duo)
    assert dash_duo.get_logs() == []
