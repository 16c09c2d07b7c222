"""The Spectral surgery view in a real browser (digits-cnn): the sample gallery, the split
at conv2, contributions, reduced proportions, the keep-top-k slider, the bias bars, the
dataset-wide jobs (progress, Cancel, a finished run) and the `tab=surgery&sample=` URL."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from dash.testing.wait import until
from e2e_helpers import (
    choose_option,
    click_tab,
    compute_top_k_surgery,
    graph,
    job_processes,
    progress_value,
    screenshot,
    settle,
    type_number,
    wait_for_number,
    wait_graph,
)
from safetensors.torch import save_file
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

import app.services.surgery_types as surgery_types
import svdcore.surgery
from app import ids
from app.config import AppConfig
from app.main import create_app, get_services
from app.services.surgery_types import SimilarityOptions, SurgeryOptions

pytestmark = pytest.mark.e2e

SAMPLE = 7

_Y_SUM = r"""
const gd = document.querySelector(arguments[0] + ' .js-plotly-plot');
return Array.from(gd._fullData[0].y).reduce((a, b) => a + Number(b), 0);
"""
_X = r"""
const gd = document.querySelector(arguments[0] + ' .js-plotly-plot');
return Array.from(gd._fullData[0].x).map(String);
"""


def _thumb(dash_duo, index: int):
    xpath = (
        f"//div[@id='{ids.DIV_SURGERY_GALLERY}']//button"
        f"[.//span[starts-with(normalize-space(), '#{index} ')]]"
    )
    return dash_duo.driver.find_element(By.XPATH, xpath)


def _chosen(dash_duo, index: int) -> bool:
    """True when sample `index`'s thumbnail is drawn as the chosen one (the gallery may be
    redrawn while we look: a stale element reads as "not yet")."""
    try:
        return "thumb-chosen" in _thumb(dash_duo, index).get_attribute("class")
    except (StaleElementReferenceException, NoSuchElementException):
        return False


def _click_thumb(dash_duo, index: int) -> bool:
    try:
        _thumb(dash_duo, index).click()
        return True
    except (StaleElementReferenceException, NoSuchElementException):
        return False


def _text(dash_duo, cid: str) -> str:
    return dash_duo.find_element(f"#{cid}").text


def _progress(dash_duo) -> float:
    return progress_value(dash_duo, ids.JOB_SURGERY_SIM.progress)


@pytest.fixture
def slow_similarity(monkeypatch):
    """Each batch of the similarity job takes a little longer, so that the test sees its
    progress bar move and can cancel it before it ends (the forked job inherits this)."""
    engine = svdcore.surgery.spectral_surgery

    def slow(*args, **kwargs):
        time.sleep(0.15)
        return engine(*args, **kwargs)

    monkeypatch.setattr(svdcore.surgery, "spectral_surgery", slow)


def test_surgery_view_gallery_contributions_jobs_and_url(
    dash_duo, tmp_path, no_leftover_jobs, slow_similarity
):
    app = create_app(AppConfig(models=["digits-cnn"], upload_dir=tmp_path / "up"))
    services = get_services(app)
    dash_duo.driver.set_window_size(1400, 4200)  # tall: the screenshot shows the whole view
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?model=digits-cnn&layer=conv2")
    dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", "conv2", timeout=20)
    click_tab(dash_duo, "Spectral surgery")
    until(lambda: "tab=surgery" in dash_duo.driver.current_url, timeout=20)

    # the gallery: one thumbnail per sample of the page; pick one
    until(lambda: len(dash_duo.find_elements(".thumb")) == 24, timeout=30)
    until(lambda: _chosen(dash_duo, 0), 20)
    until(lambda: _click_thumb(dash_duo, SAMPLE), 20)
    until(lambda: f"sample={SAMPLE}" in dash_duo.driver.current_url, timeout=20)
    until(lambda: _chosen(dash_duo, SAMPLE), 20)
    dash_duo.wait_for_contains_text(f"#{ids.DROPDOWN_SURGERY_SPLIT}", "conv2", timeout=20)
    data = services.surgery.run("digits-cnn", SurgeryOptions(SAMPLE, "conv2"), None, "zoo")
    j, r = data.predicted, data.rank
    assert data.alpha.shape == (10, 64)

    # contributions heatmap: outputs x components, diverging around zero
    heat = wait_graph(
        dash_duo,
        ids.GRAPH_SURGERY_ALPHA,
        lambda g: (g["traces"][0]["rows"], g["traces"][0]["cols"]) == (10, r),
    )
    assert heat["traces"][0]["zmid"] == 0
    assert heat["traces"][0]["zmin"] == pytest.approx(-heat["traces"][0]["zmax"])
    dash_duo.wait_for_contains_text(
        f"#{ids.DIV_SURGERY_SUMMARY}", f"sample #{SAMPLE} (label", timeout=20
    )
    assert f"output {j} (predicted)" in _text(dash_duo, ids.DIV_SURGERY_SUMMARY)
    assert f"sample #{SAMPLE}" in _text(dash_duo, ids.DIV_SURGERY_SUMMARY)

    # reduced proportions of the predicted output: they sum to 1, led by svdcore's lead
    reduced = services.surgery.reduce(data, j)
    wait_graph(dash_duo, ids.GRAPH_SURGERY_PROPORTIONS, lambda g: f"output {j}" in g["title"])
    total = dash_duo.driver.execute_script(_Y_SUM, f"#{ids.GRAPH_SURGERY_PROPORTIONS}")
    assert total == pytest.approx(1.0, abs=1e-6)
    labels = dash_duo.driver.execute_script(_X, f"#{ids.GRAPH_SURGERY_PROPORTIONS}")
    assert labels[0].startswith(f"φ{reduced.lead[0] + 1}")

    # keep top k: at k = r the output is reproduced; at k = 0 it moves as svdcore says
    # printed .2e (3 digits); at k = r the change is a rounding residual (~1e-15) that a
    # recomputation may round otherwise: abs 1e-12 (the output's relative precision)
    change = f"#{ids.TEXT_SURGERY_CHANGE}"
    full = services.surgery.prune(data, j, r).relative_change
    wait_for_number(dash_duo, change, full, digits=3, abs_tol=1e-12)
    assert float(_text(dash_duo, ids.TEXT_SURGERY_CHANGE)) < 1e-9
    wait_graph(
        dash_duo, ids.GRAPH_SURGERY_PRUNED, lambda g: [t["n"] for t in g["traces"]] == [10, 10]
    )
    handle = dash_duo.find_element(f"#{ids.SLIDER_SURGERY_KEEP} [role='slider']")
    handle.send_keys(Keys.HOME)
    k0 = services.surgery.prune(data, j, 0).relative_change
    wait_for_number(dash_duo, change, k0, digits=3, timeout=20)
    assert k0 > 1e-3
    handle.send_keys(Keys.END)
    wait_for_number(dash_duo, change, full, digits=3, abs_tol=1e-12)

    # bias bars: Σα, bypass, one β per layer with a bias, remainder, and the total y_j
    n_bars = 2 + len(data.layer_bias) + 2
    bias = wait_graph(dash_duo, ids.GRAPH_SURGERY_BIAS, lambda g: g["traces"][0]["n"] == n_bars)
    assert bias["traces"][0]["type"] == "waterfall"
    assert "a skip connection" in _text(dash_duo, ids.DIV_SURGERY_BIAS_NOTES)  # digits-cnn
    vectors = wait_graph(dash_duo, ids.GRAPH_SURGERY_VECTORS, lambda g: len(g["traces"]) >= 2)
    assert {t["type"] for t in vectors["traces"]} == {"heatmap"}
    # the data matrix's SVD beside the network's (Fig. 8): two spectra, then v_k and phi_k
    svd = wait_graph(dash_duo, ids.GRAPH_SURGERY_DATA_SVD, lambda g: len(g["traces"]) >= 4)
    assert [t["type"] for t in svd["traces"][:3]] == ["scatter", "scatter", "heatmap"]
    assert svd["traces"][1]["n"] == r and "Data SVD" in svd["title"]

    # depth evolution (Fig. 6): a background job over the four layers with weights
    dash_duo.find_element(f"#{ids.JOB_SURGERY_DEPTH.run}").click()
    depth = wait_graph(dash_duo, ids.GRAPH_SURGERY_DEPTH, lambda g: len(g["traces"]) == 12, 60)
    assert [t["type"] for t in depth["traces"]][-1] == "bar"

    # similarity (Fig. 5) over the whole test split: progress advances, then Cancel
    type_number(dash_duo, ids.INPUT_SURGERY_SIM_SAMPLES, "359")
    dash_duo.wait_for_contains_text(f"#{ids.JOB_SURGERY_SIM.status}", "Press Run", timeout=20)
    dash_duo.find_element(f"#{ids.JOB_SURGERY_SIM.run}").click()
    until(lambda: _progress(dash_duo) > 0, timeout=60, msg="the progress bar never moved")
    first = _progress(dash_duo)
    until(lambda: _progress(dash_duo) > first, timeout=60, msg="the progress bar stalled")
    assert dash_duo.find_element(f"#{ids.JOB_SURGERY_SIM.progress}").get_attribute("max") == "359"
    assert "of 359 samples" in _text(dash_duo, ids.JOB_SURGERY_SIM.text)
    assert job_processes(), "the similarity run should be a background process"
    cancel = dash_duo.find_element(f"#{ids.JOB_SURGERY_SIM.cancel}")
    assert cancel.is_enabled()
    cancel.click()
    dash_duo.wait_for_contains_text(f"#{ids.JOB_SURGERY_SIM.status}", "cancelled", timeout=20)
    until(lambda: not job_processes(), timeout=30, msg="the cancelled job is still running")
    until(lambda: dash_duo.find_element(f"#{ids.JOB_SURGERY_SIM.run}").is_enabled(), 20)
    assert not dash_duo.find_element(f"#{ids.JOB_SURGERY_SIM.cancel}").is_enabled()
    assert graph(dash_duo, ids.GRAPH_SURGERY_SIMILARITY)["traces"] == []
    cancelled = SimilarityOptions(split="conv2", samples=359, component=1)
    assert services.surgery.similarity("digits-cnn", cancelled, None, "zoo", compute=False) is None

    # the app keeps working: a smaller run finishes and is drawn, grouped by class
    type_number(dash_duo, ids.INPUT_SURGERY_SIM_SAMPLES, "96")
    dash_duo.wait_for_contains_text(f"#{ids.JOB_SURGERY_SIM.status}", "Press Run", timeout=20)
    dash_duo.find_element(f"#{ids.JOB_SURGERY_SIM.run}").click()
    sim = wait_graph(
        dash_duo,
        ids.GRAPH_SURGERY_SIMILARITY,
        lambda g: (g["traces"][0]["rows"], g["traces"][0]["cols"]) == (96, 96),
        timeout=60,
    )
    assert sim["traces"][0]["zmid"] == 0 and sim["traces"][0]["zmin"] == -1
    done = services.surgery.similarity(
        "digits-cnn", SimilarityOptions("conv2", 96, 1), None, "zoo", compute=False
    )
    np.testing.assert_allclose(np.diag(done.matrix), 1.0, atol=1e-5)
    screenshot(dash_duo, tmp_path, "surgery.png")

    # another output, typed: the reduced proportions follow it
    other = (j + 1) % 10
    type_number(dash_duo, ids.INPUT_SURGERY_OUTPUT, str(other))
    wait_graph(dash_duo, ids.GRAPH_SURGERY_PROPORTIONS, lambda g: f"output {other}" in g["title"])

    # URL round trip: the link reopens the tab on the same sample
    link = dash_duo.driver.current_url
    assert "tab=surgery" in link and f"sample={SAMPLE}" in link
    dash_duo.driver.get(dash_duo.server_url)
    dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", "conv1", timeout=20)
    dash_duo.driver.get(link)
    until(
        lambda: (
            dash_duo.find_element(f"#{ids.TABS_VIEW_SELECT} .tab--selected").text
            == "Spectral surgery"
        ),
        timeout=20,
    )
    until(lambda: _chosen(dash_duo, SAMPLE), 30)
    dash_duo.wait_for_contains_text(f"#{ids.DIV_SURGERY_SUMMARY}", f"sample #{SAMPLE}", 20)
    wait_graph(
        dash_duo,
        ids.GRAPH_SURGERY_ALPHA,
        lambda g: (g["traces"][0]["rows"], g["traces"][0]["cols"]) == (10, r),
    )
    settle(dash_duo)
    assert dash_duo.get_logs() == []


def test_weights_only_model_bad_output_and_a_split_computed_in_the_background(
    dash_duo, tmp_path, monkeypatch, no_leftover_jobs
):
    path = tmp_path / "toy.safetensors"
    save_file({"fc1.weight": torch.randn(8, 12), "fc2.weight": torch.randn(3, 8)}, str(path))
    app = create_app(AppConfig(models=[str(path), "digits-cnn"], upload_dir=tmp_path / "up"))
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?model=toy&tab=surgery")
    dash_duo.wait_for_contains_text(f"#{ids.DIV_SURGERY_ALERT}", "weights only", timeout=30)
    assert "needs a network that runs" in _text(dash_duo, ids.DIV_SURGERY_ALERT)
    assert graph(dash_duo, ids.GRAPH_SURGERY_ALPHA)["traces"] == []
    assert dash_duo.find_elements(".thumb") == []
    assert _text(dash_duo, ids.JOB_SURGERY_SIM.status) == ""  # one sentence, not three
    # an impossible output index is a sentence too, and the predicted output is shown
    dash_duo.driver.get(f"{dash_duo.server_url}/?model=digits-cnn&layer=conv2&tab=surgery")
    until(lambda: len(dash_duo.find_elements(".thumb")) == 24, timeout=30)
    type_number(dash_duo, ids.INPUT_SURGERY_OUTPUT, "12")
    dash_duo.wait_for_contains_text(f"#{ids.DIV_SURGERY_ALERT}", "no output 12", timeout=20)
    assert "(predicted)" in _text(dash_duo, ids.DIV_SURGERY_SUMMARY)

    # a split with more components than the request may compute: a Compute button, a job
    monkeypatch.setattr(surgery_types, "SYNC_MAX_RANK", 32)
    dash_duo.driver.get(f"{dash_duo.server_url}/?model=digits-cnn&layer=conv1&tab=surgery&sample=9")
    dash_duo.wait_for_contains_text(f"#{ids.TEXT_SURGERY_COMPUTE}", "r = 64", timeout=30)
    assert graph(dash_duo, ids.GRAPH_SURGERY_ALPHA)["traces"] == []
    dash_duo.find_element(f"#{ids.JOB_SURGERY_COMPUTE.run}").click()
    wait_graph(
        dash_duo,
        ids.GRAPH_SURGERY_ALPHA,
        lambda g: (g["traces"][0]["rows"], g["traces"][0]["cols"]) == (10, 64),
        timeout=60,
    )
    until(lambda: not dash_duo.find_element(f"#{ids.DIV_SURGERY_COMPUTE}").is_displayed(), 20)
    dash_duo.wait_for_contains_text(f"#{ids.DIV_SURGERY_SUMMARY}", "sample #9", timeout=20)
    settle(dash_duo)
    assert dash_duo.get_logs() == []


class _SmallCNN(torch.nn.Module):
    """A user's own CNN: conv, BatchNorm (eval), ReLU, a residual conv, pool, Linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.pool = torch.nn.AdaptiveAvgPool2d(4)
        self.fc = torch.nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        h = torch.relu(h + self.conv2(h))
        return self.fc(self.pool(h).flatten(1))


def test_an_uploaded_pt2_cnn_gets_a_top_k_surgery_with_progress_and_the_rest_term(
    dash_duo, tmp_path, no_leftover_jobs, slow_krylov
):
    """A torch.export'ed CNN (3x24x24, BatchNorm) and its .npz dataset, uploaded: split at
    conv1 (R is 4,608 x 1,728, r = 1,728 > SYNC_MAX_RANK), the page offers the top 64 in
    the background, the job's bar moves, and the result adds up with the rest term."""
    torch.manual_seed(0)
    module = _SmallCNN().eval()
    with torch.no_grad():
        module.bn1.running_mean.uniform_(-0.2, 0.2)
        module.bn1.running_var.uniform_(0.5, 1.5)
    model = tmp_path / "my_cnn.pt2"
    torch.export.save(torch.export.export(module, (torch.randn(1, 3, 24, 24),)), str(model))
    rng = np.random.default_rng(0)
    data = tmp_path / "my_images.npz"
    np.savez(data, x=rng.random((30, 3, 24, 24), dtype=np.float32), y=np.arange(30) % 5)

    app = create_app(AppConfig(models=["digits-cnn"], upload_dir=tmp_path / "up"))
    dash_duo.driver.set_window_size(1400, 4200)  # tall: the screenshot shows the whole view
    dash_duo.start_server(app)
    dash_duo.wait_for_element(f"#{ids.INPUT_UPLOAD_FILE}", timeout=20)
    dash_duo.find_element(f"#{ids.INPUT_UPLOAD_FILE}").send_keys(str(model))
    dash_duo.wait_for_contains_text(f"#{ids.DIV_UPLOAD_STATUS}", "Opened my_cnn.pt2", timeout=60)
    dash_duo.find_element(f"#{ids.INPUT_DATASET_FILE}").send_keys(str(data))
    dash_duo.wait_for_contains_text(
        f"#{ids.DIV_DATASET_UPLOAD_STATUS}", "Opened my_images.npz", timeout=30
    )
    until(lambda: "dataset=upload-" in dash_duo.driver.current_url, timeout=20)
    click_tab(dash_duo, "Spectral surgery")
    until(lambda: len(dash_duo.find_elements(".thumb")) == 24, timeout=30)
    until(lambda: "conv1" in _text(dash_duo, ids.DROPDOWN_SURGERY_SPLIT), timeout=30)
    if not _text(dash_duo, ids.DROPDOWN_SURGERY_SPLIT).startswith("conv1 "):
        choose_option(dash_duo, ids.DROPDOWN_SURGERY_SPLIT, "conv1 ")

    # r = 1,728: the top 64 by a randomized SVD, in the background
    compute_top_k_surgery(dash_duo, r=1728, outputs=5)
    bias = wait_graph(dash_duo, ids.GRAPH_SURGERY_BIAS, lambda g: len(g["traces"]) > 0)
    assert bias is not None
    labels = dash_duo.driver.execute_script(_X, f"#{ids.GRAPH_SURGERY_BIAS}")
    assert "rest of spectrum" in labels
    screenshot(dash_duo, tmp_path, "surgery-topk-pt2.png")

    # "all r": the exact surgery is offered in the background instead, with its own text
    dash_duo.find_element(f"#{ids.RADIO_SURGERY_COMPONENTS} input[value='exact']").click()
    dash_duo.wait_for_contains_text(
        f"#{ids.TEXT_SURGERY_COMPUTE}", "the exact surgery takes three Jacobians", timeout=30
    )
    settle(dash_duo)
    assert dash_duo.get_logs() == []
