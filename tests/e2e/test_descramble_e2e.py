"""The Descramble view in a real browser: exact, FFT toggles, an iterative background job
with its progress bar and Cancel, and the `tab=descramble` URL round trip."""

from __future__ import annotations

import numpy as np
import pytest
from dash.testing.wait import until
from e2e_helpers import (
    click_tab,
    graph,
    job_processes,
    parse_number,
    printed_rel,
    progress_value,
    screenshot,
    settle,
    type_number,
    wait_for_number,
    wait_graph,
)
from selenium.webdriver.common.by import By

from app import ids
from app.config import AppConfig
from app.main import create_app, get_services
from app.services import DescrambleOptions

pytestmark = pytest.mark.e2e

_Z_AT = r"""
const gd = document.querySelector(arguments[0] + ' .js-plotly-plot');
return Number(gd._fullData[0].z[arguments[1]][arguments[2]]);
"""


def _click_option(dash_duo, control_id: str, text: str) -> None:
    xpath = f"//*[@id='{control_id}']//label[contains(normalize-space(), '{text}')]"
    dash_duo.driver.find_element(By.XPATH, xpath).click()


def _text(dash_duo, key: str) -> str:
    return dash_duo.find_element(f"#text-descramble-{key}").text


def _progress(dash_duo) -> float:
    return progress_value(dash_duo, ids.JOB_DESCRAMBLE.progress)


def _shape(g) -> tuple[int, int]:
    return g["traces"][0]["rows"], g["traces"][0]["cols"]


def test_descramble_exact_fft_iterative_cancel_and_url(dash_duo, tmp_path, no_leftover_jobs):
    app = create_app(AppConfig(models=["deernet"], upload_dir=tmp_path / "up"))
    services = get_services(app)
    dash_duo.driver.set_window_size(1400, 3000)  # tall: the screenshot shows the whole view
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?model=deernet&layer=fc1")
    dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", "fc1", timeout=20)
    click_tab(dash_duo, "Descramble")
    until(lambda: "tab=descramble" in dash_duo.driver.current_url, timeout=20)

    # exact method, exact-limit source (S = W W^T)
    _click_option(dash_duo, ids.RADIO_DESCRAMBLE_SOURCE, "exact limit")
    _click_option(dash_duo, ids.RADIO_DESCRAMBLE_METHOD, "exact")
    n, d = services.registry.layer_info("deernet", "fc1", None).matrix_shape  # 80 x 256
    for gid in (ids.GRAPH_DESCRAMBLE_RAW, ids.GRAPH_DESCRAMBLE_DESCRAMBLED):
        heat = wait_graph(dash_duo, gid, lambda g: _shape(g) == (n, d))
        assert heat["traces"][0]["zmid"] == 0
    for gid in (ids.GRAPH_DESCRAMBLE_FFT_RAW, ids.GRAPH_DESCRAMBLE_FFT_DESCRAMBLED):
        fft = wait_graph(dash_duo, gid, lambda g: _shape(g) == (n, d))
        assert fft["traces"][0]["x0"] == pytest.approx(-0.5)  # cycles/sample, zero in the middle
        assert fft["traces"][0]["xlast"] == pytest.approx(0.5 - 1 / d, abs=1e-6)
        assert "input frequency (cycles/sample)" in fft["xtitles"]
    data = services.descramble.run("deernet", "fc1", DescrambleOptions(source="limit"), None)
    r = data.rank  # phi = T_r^T P U_r is r x r (the retrained DEERNet's fc1 has r < n)
    wait_graph(dash_duo, ids.GRAPH_DESCRAMBLE_P, lambda g: _shape(g) == (n, n))
    wait_graph(dash_duo, ids.GRAPH_DESCRAMBLE_PHI, lambda g: _shape(g) == (r, r))
    overlay = wait_graph(dash_duo, ids.GRAPH_DESCRAMBLE_OVERLAY, lambda g: len(g["traces"]) == 16)
    assert {t["n"] for t in overlay["traces"]} == {n}

    wait_for_number(dash_duo, "#text-descramble-objective", data.objective, digits=6)
    # exact: meets the bound (both printed at 6 digits: within two half-units of the 6th)
    assert parse_number(_text(dash_duo, "objective")) == pytest.approx(
        parse_number(_text(dash_duo, "bound")), rel=2 * printed_rel(6)
    )
    assert _text(dash_duo, "signals") == "∞"
    assert _text(dash_duo, "method") == "exact"

    # FFT toggles: the plotted values follow the symmetrised / log views of svdcore
    i, j = n // 2 + 3, d // 2 + 5
    plain = services.descramble.ffts(data, symmetrize=False, log=False)[1].magnitude
    z = dash_duo.driver.execute_script(_Z_AT, f"#{ids.GRAPH_DESCRAMBLE_FFT_DESCRAMBLED}", i, j)
    assert z == pytest.approx(plain[i, j], rel=1e-5)
    _click_option(dash_duo, ids.CHECKLIST_DESCRAMBLE_FFT, "symmetrise")
    sym = services.descramble.ffts(data, symmetrize=True, log=False)[1].magnitude
    wait_graph(
        dash_duo, ids.GRAPH_DESCRAMBLE_FFT_DESCRAMBLED, lambda g: "symmetrised" in g["title"]
    )
    z = dash_duo.driver.execute_script(_Z_AT, f"#{ids.GRAPH_DESCRAMBLE_FFT_DESCRAMBLED}", i, j)
    assert z == pytest.approx(sym[i, j], rel=1e-5) and not np.isclose(sym[i, j], plain[i, j])
    _click_option(dash_duo, ids.CHECKLIST_DESCRAMBLE_FFT, "log scale")
    both = services.descramble.ffts(data, symmetrize=True, log=True)[1].magnitude
    wait_graph(dash_duo, ids.GRAPH_DESCRAMBLE_FFT_RAW, lambda g: "log₁₀" in g["title"])
    wait_graph(dash_duo, ids.GRAPH_DESCRAMBLE_FFT_DESCRAMBLED, lambda g: "log₁₀" in g["title"])
    z = dash_duo.driver.execute_script(_Z_AT, f"#{ids.GRAPH_DESCRAMBLE_FFT_DESCRAMBLED}", i, j)
    assert z == pytest.approx(both[i, j], rel=1e-5, abs=1e-5)
    screenshot(dash_duo, tmp_path, "descramble.png")

    # iterative (Riemannian L-BFGS, the default): a background job that converges to the
    # closed-form optimum (about 120 steps here), never below it
    _click_option(dash_duo, ids.RADIO_DESCRAMBLE_METHOD, "iterative")
    dash_duo.wait_for_element(f"#{ids.JOB_DESCRAMBLE.run}", timeout=10)
    until(lambda: dash_duo.find_element(f"#{ids.JOB_DESCRAMBLE.run}").is_displayed(), 10)
    type_number(dash_duo, ids.INPUT_DESCRAMBLE_STEPS, "400")
    dash_duo.wait_for_contains_text(f"#{ids.JOB_DESCRAMBLE.status}", "press Run", timeout=20)
    dash_duo.find_element(f"#{ids.JOB_DESCRAMBLE.run}").click()
    history = wait_graph(dash_duo, ids.GRAPH_DESCRAMBLE_HISTORY, lambda g: g["traces"][0]["n"])
    assert 10 <= history["traces"][0]["n"] < 400
    dash_duo.wait_for_text_to_equal("#text-descramble-method", "iterative", timeout=20)
    assert "Riemannian L-BFGS" in dash_duo.find_element(f"#{ids.DIV_DESCRAMBLE_STATS}").text
    assert "converged" in dash_duo.find_element(f"#{ids.DIV_DESCRAMBLE_STATS}").text
    objective, bound = float(_text(dash_duo, "objective")), float(_text(dash_duo, "bound"))
    assert bound * (1 - 1e-6) <= objective <= bound * (1 + 1e-3)
    screenshot(dash_duo, tmp_path, "descramble-iterative.png")
    wait_graph(dash_duo, ids.GRAPH_DESCRAMBLE_DESCRAMBLED, lambda g: _shape(g) == (n, d))

    # a long run (Cayley + Adam at a small rate runs to its step limit): the progress bar
    # advances, Cancel stops the job, no result is shown
    _click_option(dash_duo, ids.RADIO_DESCRAMBLE_OPTIMIZER, "Cayley + Adam")
    type_number(dash_duo, ids.INPUT_DESCRAMBLE_STEPS, "100000")
    type_number(dash_duo, ids.INPUT_DESCRAMBLE_LR, "0.0001")
    dash_duo.wait_for_contains_text(f"#{ids.JOB_DESCRAMBLE.status}", "press Run", timeout=20)
    dash_duo.find_element(f"#{ids.JOB_DESCRAMBLE.run}").click()
    until(lambda: _progress(dash_duo) > 0, timeout=60, msg="the progress bar never moved")
    first = _progress(dash_duo)
    until(lambda: _progress(dash_duo) > first, timeout=60, msg="the progress bar stalled")
    assert dash_duo.find_element(f"#{ids.JOB_DESCRAMBLE.progress}").get_attribute("max") == (
        "100000"
    )
    assert dash_duo.find_element(f"#{ids.JOB_DESCRAMBLE.text}").text.startswith("step ")
    assert job_processes(), "the iterative run should be a background process"
    cancel = dash_duo.find_element(f"#{ids.JOB_DESCRAMBLE.cancel}")
    assert cancel.is_enabled()
    cancel.click()
    dash_duo.wait_for_contains_text(f"#{ids.JOB_DESCRAMBLE.status}", "cancelled", timeout=20)
    until(lambda: not job_processes(), timeout=30, msg="the cancelled job is still running")
    until(lambda: dash_duo.find_element(f"#{ids.JOB_DESCRAMBLE.run}").is_enabled(), 20)
    assert not dash_duo.find_element(f"#{ids.JOB_DESCRAMBLE.cancel}").is_enabled()
    assert not dash_duo.find_element(f"#{ids.JOB_DESCRAMBLE.progress_div}").is_displayed()
    assert graph(dash_duo, ids.GRAPH_DESCRAMBLE_DESCRAMBLED)["traces"] == []  # no result
    long_run = DescrambleOptions(
        source="limit", method="iterative", steps=100000, lr=1e-4, optimizer="adam"
    )
    assert services.descramble.run("deernet", "fc1", long_run, None, compute=False) is None

    # the app keeps working: exact again
    _click_option(dash_duo, ids.RADIO_DESCRAMBLE_METHOD, "exact")
    wait_graph(dash_duo, ids.GRAPH_DESCRAMBLE_DESCRAMBLED, lambda g: _shape(g) == (n, d))
    dash_duo.wait_for_text_to_equal("#text-descramble-method", "exact")

    # URL round trip: the link reopens the Descramble tab with its results
    link = dash_duo.driver.current_url
    assert "tab=descramble" in link and "layer=fc1" in link
    dash_duo.driver.get(dash_duo.server_url)
    dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", "fc1", timeout=20)
    dash_duo.driver.get(link)
    until(
        lambda: (
            dash_duo.find_element(f"#{ids.TABS_VIEW_SELECT} .tab--selected").text == "Descramble"
        ),
        timeout=20,
    )
    wait_graph(dash_duo, ids.GRAPH_DESCRAMBLE_DESCRAMBLED, lambda g: _shape(g) == (n, d))
    settle(dash_duo)
    assert dash_duo.get_logs() == []


def test_descramble_impossible_combination_is_a_message(dash_duo, tmp_path):
    app = create_app(AppConfig(models=["deernet"], upload_dir=tmp_path / "up"))
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?model=deernet&layer=fc1&tab=descramble")
    wait_graph(dash_duo, ids.GRAPH_DESCRAMBLE_DESCRAMBLED, lambda g: _shape(g) == (80, 256))
    _click_option(dash_duo, ids.RADIO_DESCRAMBLE_POSITION, "after the activation")
    # the exact limit S = W W^T exists for the linear position only: svdcore's sentence
    dash_duo.wait_for_contains_text(f"#{ids.DIV_DESCRAMBLE_ALERT}", "linear", timeout=20)
    assert graph(dash_duo, ids.GRAPH_DESCRAMBLE_DESCRAMBLED)["traces"] == []
    _click_option(dash_duo, ids.RADIO_DESCRAMBLE_SOURCE, "noise")
    wait_graph(dash_duo, ids.GRAPH_DESCRAMBLE_DESCRAMBLED, lambda g: _shape(g) == (80, 256))
    assert dash_duo.find_element(f"#{ids.DIV_DESCRAMBLE_ALERT}").text == ""
    dash_duo.wait_for_text_to_equal("#text-descramble-signals", "10,000")
    click_tab(dash_duo, "Spectrum")  # the other views keep working
    wait_graph(dash_duo, ids.GRAPH_SPECTRUM_VALUES, lambda g: g["traces"][0]["n"] == 80)
    settle(dash_duo)
    assert dash_duo.get_logs() == []
