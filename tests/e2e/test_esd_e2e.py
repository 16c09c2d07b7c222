"""The Spectrum tab's ESD panel in a real browser: the fits' numbers equal the engine's, a
typed xmin, a dragged xmin line and a click on the KS curve each refit the tail, the KS
button goes back, Hill's k follows a click, a bad xmin is named in the page, and near-tied
singular values are warned about."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from dash.testing.wait import until
from e2e_helpers import click_layer, screenshot, settle, text_of, type_number, wait_layer_names
from safetensors.torch import save_file
from selenium.webdriver.common.actions import interaction
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.actions.pointer_input import PointerInput

import svdcore as sc
from app import ids
from app.config import AppConfig
from app.main import create_app

pytestmark = pytest.mark.e2e

_STAT = {key: f"#{ids.stat_id('esd', key)}" for key in ("alpha", "xmin", "hill", "spikes")}

# where a data point of the figure is on the page, and the xmin line's position
_POINT_JS = r"""
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
const [xa, ya] = [gd._fullLayout[arguments[1]], gd._fullLayout[arguments[2]]];
const box = gd.getBoundingClientRect();
const px = (ax, v) => ax._offset + ax.l2p(ax.type === 'log' ? Math.log10(v) : v);
return {x: box.left + px(xa, arguments[3]), y: box.top + px(ya, arguments[4]),
        line: gd._fullLayout.shapes.length ? gd._fullLayout.shapes[0].x0 : null,
        left: box.left, top: box.top};
"""


def _planted(m: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(4)
    noise = 0.05 * torch.randn(m, n, generator=g, dtype=torch.float64) / np.sqrt(n)
    U, _ = torch.linalg.qr(torch.randn(m, 3, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(n, 3, generator=g, dtype=torch.float64))
    heavy = (
        0.3
        * torch.randn(m, n, generator=g, dtype=torch.float64)
        @ torch.diag(torch.linspace(0.01, 0.3, n, dtype=torch.float64) ** 2)
    )
    signal = U @ torch.diag(torch.tensor([9.0, 6.0, 6.01], dtype=torch.float64)) @ V.T
    return (noise + heavy + signal).float()


def _number(text: str) -> float:
    return float(text.split("±")[0].strip())


def _point(dash_duo, axes: str, x: float, y: float) -> dict:
    """Viewport pixels of data point (x, y) on the ESD figure's axes "" / "2" / "3"."""
    return dash_duo.driver.execute_script(
        _POINT_JS, ids.GRAPH_ESD, f"xaxis{axes}", f"yaxis{axes}", x, y
    )


def _pointer(dash_duo) -> ActionBuilder:
    return ActionBuilder(dash_duo.driver, mouse=PointerInput(interaction.POINTER_MOUSE, "mouse"))


def _click_at(dash_duo, x: float, y: float) -> None:
    action = _pointer(dash_duo)
    action.pointer_action.move_to_location(int(x), int(y)).pause(0.4).click()
    action.perform()


def _drag(dash_duo, x0: float, y0: float, x1: float) -> None:
    action = _pointer(dash_duo)
    pointer = action.pointer_action
    pointer.move_to_location(int(x0), int(y0)).pause(0.3).pointer_down().pause(0.2)
    for step in range(1, 11):  # plotly's drag follows mouse moves
        pointer.move_to_location(int(x0 + (x1 - x0) * step / 10), int(y0)).pause(0.05)
    pointer.pointer_up()
    action.perform()


def test_esd_panel_fits_refit_on_typed_dragged_and_clicked_xmin(dash_duo, tmp_path):
    W = _planted(240, 400)
    path = tmp_path / "net.safetensors"
    save_file({"enc.weight": W.contiguous()}, str(path))
    evals = np.sort(np.linalg.svd(W.double().numpy(), compute_uv=False) ** 2)
    auto = sc.fit_powerlaw(evals)
    hill = sc.hill_estimator(evals)
    app = create_app(AppConfig(models=[str(path)], upload_dir=tmp_path / "up"))
    dash_duo.driver.set_window_size(1500, 1400)
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?tab=spectrum")
    wait_layer_names(dash_duo)
    click_layer(dash_duo, "enc")
    dash_duo.wait_for_element(_STAT["alpha"], timeout=40)
    settle(dash_duo)
    alpha = _number(text_of(dash_duo, _STAT["alpha"]))
    assert alpha == pytest.approx(auto.alpha, abs=1e-3)  # printed at 3 decimals
    assert _number(text_of(dash_duo, _STAT["hill"])) == pytest.approx(hill.alpha, abs=1e-3)
    spikes = sc.fit_marchenko_pastur(evals, shape=(240, 400)).n_spikes
    assert int(text_of(dash_duo, _STAT["spikes"])) == spikes
    ties = text_of(dash_duo, f"#{ids.DIV_ESD_TIES}")
    expected_ties = sc.near_ties(np.sqrt(evals[::-1]), top=16)
    assert expected_ties[0].label() == "σ2–σ3"  # the planted pair
    assert all(t.label() in ties for t in expected_ties) and "subspace" in ties
    screenshot(dash_duo, tmp_path, "esd-panel.png")

    # a typed xmin: the tail from there, its alpha the MLE over it
    typed = float(f"{evals[-30]:.6g}")
    type_number(dash_duo, ids.INPUT_ESD_XMIN, str(typed))
    chosen = sc.fit_powerlaw(evals, xmin=typed)
    until(lambda: "yours" in text_of(dash_duo, f"#{ids.DIV_ESD_STATS}"), timeout=20)
    settle(dash_duo)
    assert _number(text_of(dash_duo, _STAT["alpha"])) == pytest.approx(chosen.alpha, abs=1e-3)
    at = _point(dash_duo, "", typed, 1)
    assert at["line"] == pytest.approx(chosen.xmin, rel=1e-6)  # the line moved there

    # the KS button: back to the automatic choice
    dash_duo.find_element(f"#{ids.BUTTON_ESD_AUTO}").click()
    until(lambda: "smallest KS" in text_of(dash_duo, f"#{ids.DIV_ESD_STATS}"), timeout=20)
    settle(dash_duo)
    assert _number(text_of(dash_duo, _STAT["alpha"])) == pytest.approx(auto.alpha, abs=1e-3)

    # drag the xmin line (the figure's first shape) to the right on the log axis
    dash_duo.driver.execute_script(
        "document.getElementById(arguments[0]).scrollIntoView({block: 'center'});", ids.GRAPH_ESD
    )
    target = float(evals[-60])
    middle = dash_duo.driver.execute_script(
        "const a = document.querySelector('#' + arguments[0] + ' .js-plotly-plot')"
        "._fullLayout.yaxis; return [Math.pow(10, a.range[0]), Math.pow(10, a.range[1])];",
        ids.GRAPH_ESD,
    )
    y_mid = float(np.sqrt(middle[0] * middle[1]))  # halfway up the log axis
    start, goal = _point(dash_duo, "", auto.xmin, y_mid), _point(dash_duo, "", target, y_mid)
    screenshot(dash_duo, tmp_path, "esd-figure.png")
    _click_at(dash_duo, start["x"], start["y"])  # activate the shape
    _drag(dash_duo, start["x"], start["y"], goal["x"])
    until(lambda: "yours" in text_of(dash_duo, f"#{ids.DIV_ESD_STATS}"), timeout=20)
    settle(dash_duo)
    dragged = float(dash_duo.find_element(f"#{ids.INPUT_ESD_XMIN}").get_attribute("value"))
    assert dragged == pytest.approx(target, rel=0.1)  # a pixel or two of the log axis
    refit = sc.fit_powerlaw(evals, xmin=dragged)
    assert _number(text_of(dash_duo, _STAT["alpha"])) == pytest.approx(refit.alpha, abs=1e-3)
    screenshot(dash_duo, tmp_path, "esd-panel-dragged.png")

    # a click on the Hill plot chooses k
    k = 40
    point = _point(dash_duo, "3", k, float(hill.alphas[k - 1]))
    _click_at(dash_duo, point["x"], point["y"])  # the first click ends the line's editing
    time.sleep(0.6)  # not a double click (plotly's is 300 ms)
    _click_at(dash_duo, point["x"], point["y"])
    until(
        lambda: dash_duo.find_element(f"#{ids.INPUT_ESD_HILL_K}").get_attribute("value") != "",
        timeout=20,
    )
    settle(dash_duo)
    clicked_k = int(dash_duo.find_element(f"#{ids.INPUT_ESD_HILL_K}").get_attribute("value"))
    assert abs(clicked_k - k) <= 3
    expected = sc.hill_estimator(evals, k=clicked_k).alpha
    assert _number(text_of(dash_duo, _STAT["hill"])) == pytest.approx(expected, abs=1e-3)

    # an xmin above every eigenvalue: the page names it, the rest of the tab keeps working
    type_number(dash_duo, ids.INPUT_ESD_XMIN, f"{evals[-1] * 10:.6g}")
    dash_duo.wait_for_contains_text(f"#{ids.DIV_ESD_ALERT}", "choose a smaller xmin", timeout=20)
    assert dash_duo.find_element(f"#{ids.GRAPH_SPECTRUM_VALUES}").is_displayed()
    settle(dash_duo)
    assert dash_duo.get_logs() == []
