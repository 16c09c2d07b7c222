"""The Subspaces & residuals view and the dataset picker in a real browser: the four
dimensions of digits fc1, its signal vectors and residual images, the energy table, the
kernels view of digits-cnn, an uploaded .npz dataset, and a dataset of the wrong shape."""

from __future__ import annotations

import numpy as np
import pytest
from dash.testing.wait import until
from e2e_helpers import (
    click_layer,
    click_tab,
    graph,
    parse_number,
    screenshot,
    select_model,
    settle,
    wait_graph,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

import svdcore as sc
from app import ids
from app.config import AppConfig
from app.main import create_app, get_services
from app.services import SubspacesOptions

pytestmark = pytest.mark.e2e


def _stat(dash_duo, key: str) -> str:
    return dash_duo.find_element(f"#{ids.stat_id('subspaces', key)}").text


def _images(g, shape: tuple[int, int]) -> bool:
    return all(t["type"] == "heatmap" and (t["rows"], t["cols"]) == shape for t in g["traces"])


def _table_cells(dash_duo, column: str) -> list[str]:
    cells = dash_duo.find_elements(f"#{ids.TABLE_SUBSPACES_ENERGY} td[data-dash-column='{column}']")
    return [c.text for c in cells]


def _click_option(dash_duo, control_id: str, text: str) -> None:
    xpath = f"//*[@id='{control_id}']//label[contains(normalize-space(), '{text}')]"
    dash_duo.driver.find_element(By.XPATH, xpath).click()


def _choose(dash_duo, dropdown_id: str, text: str) -> None:
    dash_duo.find_element(f"#{dropdown_id}").click()
    for option in dash_duo.find_elements(".dash-dropdown-option"):
        if text in option.text:
            option.click()
            return
    raise AssertionError(f"no option with {text!r} in #{dropdown_id}")


def test_digits_fc1_subspaces_residuals_and_conv_kernels(dash_duo, tmp_path):
    app = create_app(AppConfig(models=["digits", "digits-cnn"], upload_dir=tmp_path / "up"))
    services = get_services(app)
    dash_duo.driver.set_window_size(1400, 3400)  # tall: the screenshot shows the whole view
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?model=digits&layer=fc1")
    dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", "fc1", timeout=20)
    dash_duo.wait_for_contains_text(f"#{ids.DIV_DATASET_STATUS}", "359 samples", timeout=20)
    click_tab(dash_duo, "Subspaces & residuals")
    until(lambda: "tab=subspaces" in dash_duo.driver.current_url, timeout=20)

    # the four dimensions of W (10 x 64, rank 10) and its condition number
    dash_duo.wait_for_text_to_equal(f"#{ids.stat_id('subspaces', 'row')}", "10", timeout=30)
    assert [_stat(dash_duo, k) for k in ("row", "col", "null", "left_null")] == [
        "10",
        "10",
        "54",
        "0",
    ]
    W = sc.zoo.load("digits").matrix("fc1")
    assert float(_stat(dash_duo, "cond")) == pytest.approx(sc.subspaces(W).cond, rel=1e-3)

    # ten signal vectors sigma_i v_i as 8x8 images on one colour scale
    signal = wait_graph(dash_duo, ids.GRAPH_SUBSPACES_SIGNAL, lambda g: len(g["traces"]) == 10)
    assert _images(signal, (8, 8))
    assert len({(t["zmin"], t["zmax"]) for t in signal["traces"]}) == 1
    assert signal["annotations"][0].startswith("σ<sub>1</sub>v<sub>1</sub>")

    # the average of class 0: input / signal / residual, the per-neuron residual row, the
    # residuals of all ten class averages, and the energy table
    split = wait_graph(dash_duo, ids.GRAPH_SUBSPACES_DECOMPOSITION, lambda g: len(g["traces"]) == 3)
    assert _images(split, (8, 8)) and "average of class 0" in split["title"]
    neurons = wait_graph(dash_duo, ids.GRAPH_SUBSPACES_NEURONS, lambda g: len(g["traces"]) == 10)
    assert _images(neurons, (8, 8)) and neurons["annotations"][3].startswith("neuron 3")
    classes = wait_graph(dash_duo, ids.GRAPH_SUBSPACES_CLASSES, lambda g: len(g["traces"]) == 10)
    assert _images(classes, (8, 8)) and classes["annotations"][8].startswith("class 8")
    # fc1's outputs are the classes: each class average against its own neuron (Fig. 1)
    own = wait_graph(dash_duo, ids.GRAPH_SUBSPACES_OWN, lambda g: len(g["traces"]) == 10)
    assert _images(own, (8, 8)) and own["annotations"][8].startswith("class 8 − p")
    until(lambda: len(_table_cells(dash_duo, "name")) == 10, timeout=20)
    assert _table_cells(dash_duo, "name") == [str(i) for i in range(10)]
    data = services.subspaces.projections(
        "digits", "fc1", "default", SubspacesOptions(), "zoo", None
    )
    # printed as "12.3 %": within half of the last digit (0.05) of the service's numbers
    cells = _table_cells(dash_duo, "energy_removed")
    assert all(cell.endswith(" %") for cell in cells) and len(cells) == len(data.class_table)
    expected = [100 * row["energy_removed"] for row in data.class_table]
    assert [parse_number(cell) for cell in cells] == pytest.approx(expected, abs=0.0505)
    assert _stat(dash_duo, "energy").endswith(" %")
    assert parse_number(_stat(dash_duo, "energy")) == pytest.approx(
        100 * data.mean_energy_ratio, abs=0.0505
    )
    screenshot(dash_duo, tmp_path, "subspaces.png")

    # a class average of another class, then one sample
    _choose(dash_duo, ids.DROPDOWN_SUBSPACES_CLASS, "class 8")
    wait_graph(
        dash_duo, ids.GRAPH_SUBSPACES_DECOMPOSITION, lambda g: "average of class 8" in g["title"]
    )
    _click_option(dash_duo, ids.RADIO_SUBSPACES_FOCUS, "one sample")
    box = dash_duo.find_element(f"#{ids.INPUT_SUBSPACES_SAMPLE}")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("5", Keys.ENTER)
    wait_graph(dash_duo, ids.GRAPH_SUBSPACES_DECOMPOSITION, lambda g: "sample 5" in g["title"])

    # a stricter rank tolerance drops singular values: the dimensions follow
    S = sc.subspaces(W).singular_values
    rtol = float((S[-1] + S[-2]) / 2 / S[0])  # between sigma_9 and sigma_10
    box = dash_duo.find_element(f"#{ids.INPUT_SUBSPACES_RTOL}")
    box.send_keys(f"{rtol:.6f}", Keys.ENTER)
    dash_duo.wait_for_text_to_equal(f"#{ids.stat_id('subspaces', 'row')}", "9", timeout=20)
    assert _stat(dash_duo, "null") == "55" and _stat(dash_duo, "left_null") == "1"
    wait_graph(dash_duo, ids.GRAPH_SUBSPACES_SIGNAL, lambda g: len(g["traces"]) == 9)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE, Keys.ENTER)
    dash_duo.wait_for_text_to_equal(f"#{ids.stat_id('subspaces', 'row')}", "10", timeout=20)

    # digits-cnn conv2 in the kernels view: 64 kernels of 3x3 -> nine 3x3 signal kernels
    select_model(dash_duo, "digits-cnn")
    dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", "digits-cnn", timeout=20)
    click_layer(dash_duo, "conv2")
    dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", "conv2", timeout=20)
    _click_option(dash_duo, ids.RADIO_MATRIX_VIEW, "kernels")
    until(lambda: "view=kernels" in dash_duo.driver.current_url, timeout=20)
    kernels = wait_graph(
        dash_duo,
        ids.GRAPH_SUBSPACES_SIGNAL,
        lambda g: len(g["traces"]) == 9 and _images(g, (3, 3)),
    )
    assert "signal kernels" in kernels["title"]
    assert [_stat(dash_duo, k) for k in ("row", "col", "null", "left_null")] == [
        "9",
        "9",
        "0",
        "55",
    ]
    # a convolution's matrix acts on patches: the page says why there are no residuals
    dash_duo.wait_for_contains_text(f"#{ids.DIV_SUBSPACES_NOTE}", "patches", timeout=20)
    assert not dash_duo.find_element(f"#{ids.DIV_SUBSPACES_INPUTS}").is_displayed()

    # its fully connected layer reads the outputs of act3
    click_layer(dash_duo, "fc1")
    dash_duo.wait_for_contains_text(f"#{ids.DIV_SUBSPACES_SOURCE}", "outputs of act3", timeout=30)
    settle(dash_duo)
    assert dash_duo.get_logs() == []


def _upload_dataset(dash_duo, path, expect: str) -> None:
    dash_duo.find_element(f"#{ids.INPUT_DATASET_FILE}").send_keys(str(path))
    dash_duo.wait_for_contains_text(f"#{ids.DIV_DATASET_UPLOAD_STATUS}", expect, timeout=30)


def test_uploaded_npz_dataset_is_used_and_a_mismatch_names_both_shapes(dash_duo, tmp_path):
    digits = sc.zoo.dataset("digits", split="test")
    good = tmp_path / "my_digits.npz"
    np.savez(good, x=digits.x[:120].numpy(), y=digits.y[:120].numpy())
    wrong = tmp_path / "short_rows.npz"
    np.savez(wrong, x=np.random.default_rng(0).random((30, 10)), y=np.arange(30) % 3)

    app = create_app(AppConfig(models=["digits"], upload_dir=tmp_path / "up"))
    dash_duo.driver.set_window_size(1400, 1800)
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?model=digits&layer=fc1&tab=subspaces")
    until(lambda: len(_table_cells(dash_duo, "name")) == 10, timeout=30)
    zoo_counts = _table_cells(dash_duo, "count")

    _upload_dataset(dash_duo, good, "Opened my_digits.npz")
    dash_duo.wait_for_contains_text(f"#{ids.DROPDOWN_DATASET_SELECT}", "my_digits.npz")
    until(lambda: "dataset=upload-" in dash_duo.driver.current_url, timeout=20)
    dash_duo.wait_for_contains_text(f"#{ids.DIV_DATASET_STATUS}", "120 samples", timeout=20)
    dash_duo.wait_for_contains_text(f"#{ids.DIV_SUBSPACES_SOURCE}", "120 samples", timeout=20)
    until(lambda: _table_cells(dash_duo, "count") != zoo_counts, timeout=20)
    counts = np.bincount(digits.y[:120].numpy(), minlength=10)
    assert _table_cells(dash_duo, "count") == [str(c) for c in counts if c]

    # the link keeps the dataset
    link = dash_duo.driver.current_url
    dash_duo.driver.get(dash_duo.server_url)
    dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", "fc1", timeout=20)
    dash_duo.driver.get(link)
    dash_duo.wait_for_contains_text(f"#{ids.DIV_DATASET_STATUS}", "120 samples", timeout=20)

    # 10 values per sample for a model that takes 64: svdcore's sentence, both shapes named
    _upload_dataset(dash_duo, wrong, "Opened short_rows.npz")
    dash_duo.wait_for_contains_text(f"#{ids.DIV_DATASET_STATUS}", "(64,)", timeout=20)
    status = dash_duo.find_element(f"#{ids.DIV_DATASET_STATUS}").text
    assert "(10,)" in status and "(64,)" in status and "Traceback" not in status
    dash_duo.wait_for_contains_text(f"#{ids.DIV_SUBSPACES_NOTE}", "(10,)", timeout=20)
    # the weights' part of the view still works
    wait_graph(dash_duo, ids.GRAPH_SUBSPACES_SIGNAL, lambda g: len(g["traces"]) == 10)
    assert graph(dash_duo, ids.GRAPH_SUBSPACES_DECOMPOSITION) is not None

    # back to the model's own data
    _choose(dash_duo, ids.DROPDOWN_DATASET_SELECT, "its own data")
    dash_duo.wait_for_contains_text(f"#{ids.DIV_DATASET_STATUS}", "359 samples", timeout=20)
    until(lambda: "dataset=" not in dash_duo.driver.current_url, timeout=20)
    settle(dash_duo)
    assert dash_duo.get_logs() == []
