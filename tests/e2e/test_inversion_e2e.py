"""The Inversion view in a real browser: the pseudo-inverse of digits gives an image whose
output matches the ideal output, an optimisation runs as a background job with a progress
bar and Cancel, a network that is not invertible shows the pseudo-inverse disabled with
svdcore's sentence and the optimisation selected, and an uploaded torch.export CNN
(ResNet-shaped, fixed batch 8) with an uploaded dataset is optimised."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dash.testing.wait import until
from e2e_helpers import (
    click_tab,
    graph,
    job_processes,
    progress_value,
    screenshot,
    select_model,
    settle,
    type_number,
    wait_for_number,
    wait_graph,
)
from selenium.webdriver.common.by import By
from torch import nn

from app import ids
from app.config import AppConfig
from app.main import create_app, get_services
from app.services import InversionOptions

pytestmark = pytest.mark.e2e


def _stat(dash_duo, key: str) -> str:
    return dash_duo.find_element(f"#{ids.stat_id('inversion', key)}").text


def _click_option(dash_duo, control_id: str, text: str) -> None:
    xpath = f"//*[@id='{control_id}']//label[contains(normalize-space(), '{text}')]"
    dash_duo.driver.find_element(By.XPATH, xpath).click()


def _choose(dash_duo, dropdown_id: str, text: str) -> None:
    dash_duo.find_element(f"#{dropdown_id}").click()
    for option in dash_duo.find_elements(".dash-dropdown-option"):
        if option.text == text:
            option.click()
            return
    raise AssertionError(f"no option {text!r} in #{dropdown_id}")


def _progress(dash_duo) -> float:
    return progress_value(dash_duo, ids.JOB_INVERSION.progress)


def _method_input(dash_duo, value: str):
    xpath = f"//*[@id='{ids.RADIO_INVERSION_METHOD}']//input[@value='{value}']"
    return dash_duo.driver.find_element(By.XPATH, xpath)


def _bars(g) -> bool:
    return len(g["traces"]) == 2 and all(t["type"] == "bar" and t["n"] == 10 for t in g["traces"])


def test_pseudo_inverse_optimisation_progress_and_cancel(dash_duo, tmp_path, no_leftover_jobs):
    app = create_app(AppConfig(models=["digits", "digits-cnn"], upload_dir=tmp_path / "up"))
    services = get_services(app)
    dash_duo.driver.set_window_size(1400, 1900)
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?model=digits&layer=fc1")
    dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", "fc1", timeout=20)
    click_tab(dash_duo, "Inversion")
    until(lambda: "tab=inversion" in dash_duo.driver.current_url, timeout=20)

    # pseudo-inverse (the default) for class 3: an 8x8 image whose output is the ideal one
    _choose(dash_duo, ids.DROPDOWN_INVERSION_TARGET, "class 3")
    image = wait_graph(
        dash_duo,
        ids.GRAPH_INVERSION_INPUT,
        lambda g: "class 3" in g["title"] and g["traces"][0]["type"] == "heatmap",
    )
    assert (image["traces"][0]["rows"], image["traces"][0]["cols"]) == (8, 8)
    wait_graph(dash_duo, ids.GRAPH_INVERSION_OUTPUT, _bars)
    data = services.inversion.run("digits", InversionOptions(target=3), "zoo", None)
    # printed at 4 digits; the distance itself is a rounding residual (~1e-15), which a
    # recomputation along another path may round otherwise: abs 1e-12 of the target's scale
    wait_for_number(
        dash_duo,
        f"#{ids.stat_id('inversion', 'distance')}",
        data.distance,
        digits=4,
        abs_tol=1e-12 * max(1.0, float(abs(data.target).max())),
        timeout=20,
    )
    assert data.distance < 1e-6 * max(1.0, float(abs(data.target).max()))
    assert _stat(dash_duo, "predicted") == "3" and _stat(dash_duo, "method") == "pseudo-inverse"
    assert not dash_duo.find_element(f"#{ids.JOB_INVERSION.run}").is_displayed()

    # optimisation: a short run completes in a background job and lowers the distance
    _click_option(dash_duo, ids.RADIO_INVERSION_METHOD, "optimisation")
    until(lambda: dash_duo.find_element(f"#{ids.JOB_INVERSION.run}").is_displayed(), 10)
    type_number(dash_duo, ids.INPUT_INVERSION_STEPS, "200")
    type_number(dash_duo, ids.INPUT_INVERSION_LR, "0.002")
    dash_duo.wait_for_contains_text(f"#{ids.JOB_INVERSION.status}", "press Run", timeout=20)
    dash_duo.find_element(f"#{ids.JOB_INVERSION.run}").click()
    history = wait_graph(dash_duo, ids.GRAPH_INVERSION_HISTORY, lambda g: g["traces"][0]["n"])
    assert history["traces"][0]["n"] == 201  # the start and every step
    dash_duo.wait_for_contains_text(
        f"#{ids.stat_id('inversion', 'method')}", "optimise from avg-img", timeout=20
    )
    assert float(_stat(dash_duo, "distance")) <= float(_stat(dash_duo, "start"))
    wait_graph(dash_duo, ids.GRAPH_INVERSION_INPUT, lambda g: g["traces"][0]["type"] == "heatmap")
    wait_graph(dash_duo, ids.GRAPH_INVERSION_OUTPUT, _bars)
    screenshot(dash_duo, tmp_path, "inversion.png")

    # a long run: the progress bar advances, Cancel stops the job, no result is shown
    _click_option(dash_duo, ids.RADIO_INVERSION_START, "min-img")
    type_number(dash_duo, ids.INPUT_INVERSION_STEPS, "100000")
    type_number(dash_duo, ids.INPUT_INVERSION_LR, "0.0001")
    dash_duo.wait_for_contains_text(f"#{ids.JOB_INVERSION.status}", "press Run", timeout=20)
    dash_duo.find_element(f"#{ids.JOB_INVERSION.run}").click()
    until(lambda: _progress(dash_duo) > 0, timeout=60, msg="the progress bar never moved")
    first = _progress(dash_duo)
    until(lambda: _progress(dash_duo) > first, timeout=60, msg="the progress bar stalled")
    assert dash_duo.find_element(f"#{ids.JOB_INVERSION.progress}").get_attribute("max") == (
        "100000"
    )
    assert dash_duo.find_element(f"#{ids.JOB_INVERSION.text}").text.startswith("step ")
    assert job_processes(), "the optimisation should be a background process"
    cancel = dash_duo.find_element(f"#{ids.JOB_INVERSION.cancel}")
    assert cancel.is_enabled()
    cancel.click()
    dash_duo.wait_for_contains_text(f"#{ids.JOB_INVERSION.status}", "cancelled", timeout=20)
    until(lambda: not job_processes(), timeout=30, msg="the cancelled job is still running")
    until(lambda: dash_duo.find_element(f"#{ids.JOB_INVERSION.run}").is_enabled(), 20)
    assert not dash_duo.find_element(f"#{ids.JOB_INVERSION.cancel}").is_enabled()
    assert not dash_duo.find_element(f"#{ids.JOB_INVERSION.progress_div}").is_displayed()
    assert graph(dash_duo, ids.GRAPH_INVERSION_INPUT)["traces"] == []  # no result
    long_run = InversionOptions(target=3, method="optimise", start="min-img", steps=100000, lr=1e-4)
    assert services.inversion.run("digits", long_run, "zoo", None, compute=False) is None

    # a ReLU CNN cannot be inverted layer by layer: the pseudo-inverse is shown disabled
    # with svdcore's sentence, and the optimisation is selected instead
    _click_option(dash_duo, ids.RADIO_INVERSION_METHOD, "pseudo-inverse")
    select_model(dash_duo, "digits-cnn")
    note = f"#{ids.DIV_INVERSION_METHOD_NOTE}"
    dash_duo.wait_for_contains_text(note, "cannot be inverted layer by layer", timeout=30)
    text = dash_duo.find_element(note).text
    assert "Pseudo-inverse unavailable" in text and "Traceback" not in text
    until(lambda: _method_input(dash_duo, "optimise").is_selected(), timeout=20)
    assert not _method_input(dash_duo, "pseudo-inverse").is_enabled()
    dash_duo.wait_for_contains_text(f"#{ids.JOB_INVERSION.status}", "press Run", timeout=20)
    assert dash_duo.find_element(f"#{ids.DIV_INVERSION_ALERT}").text == ""
    click_tab(dash_duo, "Weights")  # the other views keep working
    wait_graph(dash_duo, ids.GRAPH_WEIGHTS_HEATMAP, lambda g: g["traces"][0]["type"] == "heatmap")
    settle(dash_duo)
    assert dash_duo.get_logs() == []


class _Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))) + x)


def _resnetish() -> nn.Module:
    """conv stem + eval-mode BatchNorm + ReLU, two residual blocks, average pool, Linear."""
    torch.manual_seed(0)
    stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return nn.Sequential(stem, _Block(4), _Block(4), pool, nn.Linear(4, 10)).eval()


def test_an_uploaded_exported_cnn_is_optimised(dash_duo, tmp_path, no_leftover_jobs):
    model = tmp_path / "resnetish-b8.pt2"
    ep = torch.export.export(_resnetish(), (torch.randn(8, 1, 12, 12),))
    torch.export.save(ep, model)
    data = tmp_path / "train.npz"
    gen = np.random.default_rng(0)
    np.savez(data, x=gen.random((50, 1, 12, 12)).astype(np.float32), y=np.arange(50) % 10)

    app = create_app(AppConfig(models=["digits"], upload_dir=tmp_path / "up"))
    dash_duo.driver.set_window_size(1400, 1900)
    dash_duo.start_server(app)
    dash_duo.wait_for_element(f"#{ids.INPUT_UPLOAD_FILE}", timeout=20)
    dash_duo.find_element(f"#{ids.INPUT_UPLOAD_FILE}").send_keys(str(model))
    dash_duo.wait_for_contains_text(f"#{ids.DIV_UPLOAD_STATUS}", f"Opened {model.name}", 30)
    dash_duo.wait_for_contains_text(f"#{ids.DROPDOWN_MODEL_SELECT}", model.name, timeout=20)
    dash_duo.find_element(f"#{ids.INPUT_DATASET_FILE}").send_keys(str(data))
    dash_duo.wait_for_contains_text(f"#{ids.DIV_DATASET_UPLOAD_STATUS}", "Opened train.npz", 30)
    until(lambda: "dataset=upload-" in dash_duo.driver.current_url, timeout=20)
    click_tab(dash_duo, "Inversion")
    until(lambda: "tab=inversion" in dash_duo.driver.current_url, timeout=20)

    # not a chain: the pseudo-inverse says why, the optimisation is selected
    note = f"#{ids.DIV_INVERSION_METHOD_NOTE}"
    dash_duo.wait_for_contains_text(note, "part of a torch.export program", timeout=30)
    until(lambda: _method_input(dash_duo, "optimise").is_selected(), timeout=20)
    assert not _method_input(dash_duo, "pseudo-inverse").is_enabled()
    _choose(dash_duo, ids.DROPDOWN_INVERSION_TARGET, "class 2")
    type_number(dash_duo, ids.INPUT_INVERSION_STEPS, "40")
    type_number(dash_duo, ids.INPUT_INVERSION_LR, "0.05")
    dash_duo.wait_for_contains_text(f"#{ids.JOB_INVERSION.status}", "press Run", timeout=20)
    dash_duo.find_element(f"#{ids.JOB_INVERSION.run}").click()
    history = wait_graph(dash_duo, ids.GRAPH_INVERSION_HISTORY, lambda g: g["traces"][0]["n"])
    assert history["traces"][0]["n"] == 41  # the start and every step
    image = wait_graph(
        dash_duo,
        ids.GRAPH_INVERSION_INPUT,
        lambda g: "class 2" in g["title"] and g["traces"][0]["type"] == "heatmap",
    )
    assert (image["traces"][0]["rows"], image["traces"][0]["cols"]) == (12, 12)
    wait_graph(dash_duo, ids.GRAPH_INVERSION_OUTPUT, _bars)
    dash_duo.wait_for_contains_text(
        f"#{ids.stat_id('inversion', 'method')}", "optimise from avg-img", timeout=20
    )
    assert float(_stat(dash_duo, "distance")) <= float(_stat(dash_duo, "start"))
    assert dash_duo.find_element(f"#{ids.DIV_INVERSION_ALERT}").text == ""
    screenshot(dash_duo, tmp_path, "inversion-export.png")
    settle(dash_duo)
    assert dash_duo.get_logs() == []
