"""The three views in a real browser, on the zoo networks, plus the URL round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dash.testing.wait import until
from e2e_helpers import (
    click_layer,
    click_tab,
    parse_number,
    printed_rel,
    screenshot,
    select_model,
    settle,
    wait_for_number,
    wait_graph,
    wait_layer_names,
)
from safetensors.torch import save_file
from selenium.webdriver.common.by import By

from app import ids
from app.config import AppConfig
from app.main import create_app, get_services

pytestmark = pytest.mark.e2e


def _selected_tab(dash_duo) -> str:
    return dash_duo.find_element(f"#{ids.TABS_VIEW_SELECT} .tab--selected").text


def test_deernet_weights_spectrum_and_vectors(dash_duo, tmp_path):
    app = create_app(AppConfig(upload_dir=tmp_path / "uploads"))
    services = get_services(app)
    dash_duo.start_server(app)
    dash_duo.wait_for_element(f"#{ids.DROPDOWN_MODEL_SELECT}", timeout=20)
    settle(dash_duo)
    select_model(dash_duo, "deernet")
    settle(dash_duo)
    first = wait_layer_names(dash_duo)[0]
    click_layer(dash_duo, first)
    dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", first)
    m, n = services.registry.layer_info("deernet", first, None).matrix_shape

    heat = wait_graph(
        dash_duo,
        ids.GRAPH_WEIGHTS_HEATMAP,
        lambda g: (
            g["traces"][0]["type"] == "heatmap"
            and (g["traces"][0]["rows"], g["traces"][0]["cols"]) == (m, n)
        ),
    )
    trace = heat["traces"][0]
    W = services.layers.weights("deernet", first, "default", None).matrix
    assert trace["zmid"] == 0
    assert trace["zmax"] == pytest.approx(np.abs(W).max(), rel=1e-6) == -trace["zmin"]
    screenshot(dash_duo, tmp_path, "weights.png")

    click_tab(dash_duo, "Spectrum")
    spec = wait_graph(
        dash_duo, ids.GRAPH_SPECTRUM_VALUES, lambda g: g["traces"][0]["n"] == min(m, n)
    )
    assert spec["ytype"] == "log"
    summary = services.layers.spectrum("deernet", first, "default", None).summary
    wait_for_number(dash_duo, "#text-spectrum-cond", summary.condition_number, digits=4)
    rank_text = dash_duo.find_element("#text-spectrum-rank").text
    assert rank_text == f"{summary.numerical_rank} of {min(m, n)}"
    screenshot(dash_duo, tmp_path, "spectrum.png")

    click_tab(dash_duo, "Singular vectors")
    right = wait_graph(dash_duo, ids.GRAPH_VECTORS_RIGHT, lambda g: len(g["traces"]) == 8)
    assert {t["type"] for t in right["traces"]} == {"scatter"}
    info = services.registry.network("deernet", None).view_info(first)
    if info.col_axis is not None:  # the DEER trace: curves over time in µs
        assert f"{info.col_axis.label} ({info.col_axis.unit})" in right["xtitles"]
        assert right["traces"][0]["x0"] == pytest.approx(info.col_axis.values[0], abs=1e-6)
        assert right["traces"][0]["xlast"] == pytest.approx(info.col_axis.values[-1], rel=1e-6)
    sigma = services.layers.vectors("deernet", first, "default", 8, None).sigma
    shown_sigma = right["annotations"][0].rsplit("σ = ", 1)[1]
    assert parse_number(shown_sigma) == pytest.approx(float(sigma[0]), rel=printed_rel(4))
    wait_graph(dash_duo, ids.GRAPH_VECTORS_LEFT, lambda g: len(g["traces"]) == 8)
    url = dash_duo.driver.current_url
    assert "model=deernet" in url and f"layer={first}" in url and "tab=vectors" in url
    screenshot(dash_duo, tmp_path, "vectors.png")
    assert dash_duo.get_logs() == []


def test_digits_singular_vectors_are_8x8_images(dash_duo, tmp_path):
    app = create_app(AppConfig(models=["digits", "digits-5layer"], upload_dir=tmp_path / "up"))
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?model=digits&tab=vectors")
    right = wait_graph(
        dash_duo,
        ids.GRAPH_VECTORS_RIGHT,
        lambda g: len(g["traces"]) == 8 and g["traces"][0]["type"] == "heatmap",
    )
    for trace in right["traces"]:
        assert trace["type"] == "heatmap" and (trace["rows"], trace["cols"]) == (8, 8)
        assert trace["zmid"] == 0 and trace["zmin"] == -trace["zmax"]
    assert _selected_tab(dash_duo) == "Singular vectors"
    left = wait_graph(dash_duo, ids.GRAPH_VECTORS_LEFT, lambda g: len(g["traces"]) == 8)
    assert {t["type"] for t in left["traces"]} == {"scatter"}  # 10 class scores: curves
    assert left["traces"][0]["n"] == 10
    screenshot(dash_duo, tmp_path, "digits-vectors.png")
    assert dash_duo.get_logs() == []


def test_url_round_trip_and_back_button(dash_duo, tmp_path):
    app = create_app(AppConfig(models=["digits-5layer", "deernet"], upload_dir=tmp_path / "up"))
    services = get_services(app)
    dash_duo.start_server(app)
    settle(dash_duo)
    names = wait_layer_names(dash_duo, at_least=2)
    assert len(names) >= 2
    second = names[1]
    click_layer(dash_duo, second)
    until(lambda: f"layer={second}" in dash_duo.driver.current_url, timeout=20)
    click_tab(dash_duo, "Spectrum")
    until(lambda: "tab=spectrum" in dash_duo.driver.current_url, timeout=20)
    link = dash_duo.driver.current_url
    assert "model=digits-5layer" in link

    dash_duo.driver.get(dash_duo.server_url)  # somewhere else first
    dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", names[0], timeout=20)
    dash_duo.driver.get(link)  # reopening the link restores model, layer and tab
    dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", second, timeout=20)
    assert _selected_tab(dash_duo) == "Spectrum"
    m, n = services.registry.layer_info("digits-5layer", second, None).matrix_shape
    wait_graph(dash_duo, ids.GRAPH_SPECTRUM_VALUES, lambda g: g["traces"][0]["n"] == min(m, n))

    click_tab(dash_duo, "Weights")
    until(lambda: "tab=weights" in dash_duo.driver.current_url, timeout=20)
    dash_duo.driver.back()  # history step inside the page: back to the spectrum
    until(lambda: _selected_tab(dash_duo) == "Spectrum", timeout=20)
    assert f"layer={second}" in dash_duo.driver.current_url
    settle(dash_duo)
    assert dash_duo.get_logs() == []


def test_conv_layer_kernels_view_and_back_to_unfolded(dash_duo, tmp_path):
    path = tmp_path / "cnn.safetensors"
    tensors = {"conv1.weight": torch.randn(6, 2, 3, 3), "head.weight": torch.randn(5, 24)}
    save_file(tensors, str(path))
    app = create_app(AppConfig(models=[str(path)], upload_dir=tmp_path / "up"))
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?model=cnn&layer=conv1&tab=vectors&view=kernels")
    right = wait_graph(
        dash_duo,
        ids.GRAPH_VECTORS_RIGHT,
        lambda g: len(g["traces"]) == 8 and g["traces"][0]["type"] == "heatmap",
    )
    assert all((t["rows"], t["cols"]) == (3, 3) for t in right["traces"])  # one 3x3 kernel each
    dash_duo.wait_for_element(f"#{ids.DIV_MATRIX_VIEW}", timeout=10)
    assert dash_duo.find_element(f"#{ids.DIV_MATRIX_VIEW}").is_displayed()

    label = f"//div[@id='{ids.RADIO_MATRIX_VIEW}']//label[normalize-space()='unfolded']"
    dash_duo.driver.find_element(By.XPATH, label).click()
    until(lambda: "view=" not in dash_duo.driver.current_url, timeout=20)  # the default view
    right = wait_graph(
        dash_duo,
        ids.GRAPH_VECTORS_RIGHT,
        lambda g: g["traces"][0]["type"] == "scatter" and g["traces"][0]["n"] == 18,
    )
    assert len(right["traces"]) == 6  # unfolded 6 x 18 has 6 singular vectors
    settle(dash_duo)
    assert dash_duo.get_logs() == []
