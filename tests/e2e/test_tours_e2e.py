"""The guided tours in a real browser: every step of every shipped tour opens the tab it
names with its options applied and its graphs drawn, scrolls to its focus, shows no
error; Previous, Finish and Leave; no console errors."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from dash.testing.errors import TestingTimeoutError
from dash.testing.wait import until
from e2e_helpers import SCREENSHOT_ENV, click_tab, screenshot, settle, wait_graph
from PIL import Image

from app import ids
from app.config import AppConfig
from app.main import create_app
from app.tours import read_tours

pytestmark = pytest.mark.e2e

TAB_LABELS = {
    ids.TAB_WEIGHTS: "Weights",
    ids.TAB_SPECTRUM: "Spectrum",
    ids.TAB_VECTORS: "Singular vectors",
    ids.TAB_DESCRAMBLE: "Descramble",
    ids.TAB_SUBSPACES: "Subspaces & residuals",
    ids.TAB_INVERSION: "Inversion",
    ids.TAB_SURGERY: "Spectral surgery",
    ids.TAB_OVERVIEW: "Overview",
    ids.TAB_COMPARE: "Compare",
}
# the graph each tab draws first: it must show data at every step
MAIN_GRAPH = {
    ids.TAB_WEIGHTS: ids.GRAPH_WEIGHTS_HEATMAP,
    ids.TAB_SPECTRUM: ids.GRAPH_SPECTRUM_VALUES,
    ids.TAB_VECTORS: ids.GRAPH_VECTORS_RIGHT,
    ids.TAB_DESCRAMBLE: ids.GRAPH_DESCRAMBLE_DESCRAMBLED,
    ids.TAB_SUBSPACES: ids.GRAPH_SUBSPACES_SIGNAL,
    ids.TAB_INVERSION: ids.GRAPH_INVERSION_INPUT,
    ids.TAB_SURGERY: ids.GRAPH_SURGERY_ALPHA,
    ids.TAB_OVERVIEW: ids.GRAPH_OVERVIEW_SPARKLINES,
    ids.TAB_COMPARE: ids.GRAPH_COMPARE_SPECTRA,
}
SCREENSHOT = ("deernet", 2)  # docs/screenshots/tour.png: the notch step

# a component's prop as the page holds it (the renderer's store, as a callback sees it)
_PROP_JS = r"""
const state = window.store.getState();
const path = state.paths.strs[arguments[0]];
if (!path) { return '__missing__'; }
let node = state.layout;
for (const key of path) { node = node[key]; }
const value = node.props[arguments[1]];
return value === undefined ? null : value;
"""
# where the focus sits: its top relative to the sticky bar's bottom and the window
_FOCUS_JS = r"""
const el = document.getElementById(arguments[0]);
const bar = document.getElementById(arguments[1]);
if (!el || !bar) { return null; }
return {top: el.getBoundingClientRect().top, bar: bar.getBoundingClientRect().bottom,
        height: window.innerHeight};
"""


def _wait(condition, timeout: float, describe) -> None:
    """until(condition), failing with describe() (what the page shows then)."""
    try:
        until(condition, timeout=timeout, poll=0.2)
    except TestingTimeoutError:
        raise AssertionError(describe()) from None


def _prop(dash_duo, cid: str, prop: str = "value"):
    return dash_duo.driver.execute_script(_PROP_JS, cid, prop)


def _pick_tour(dash_duo, title: str) -> None:
    dash_duo.find_element(f"#{ids.DROPDOWN_TOUR_SELECT}").click()
    options = dash_duo.find_elements(".dash-dropdown-option")
    for option in options:
        if option.text.strip() == title:
            option.click()
            return
    raise AssertionError(f"no tour {title!r} in the picker: {[o.text for o in options]}")


def _query(dash_duo) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(dash_duo.driver.current_url).query).items()}


def _selected_tab(dash_duo) -> str:
    return dash_duo.find_element(f"#{ids.TABS_VIEW_SELECT} .tab--selected").text.strip()


def _errors(dash_duo) -> list[str]:
    """Texts of the error and warning boxes on the page (no implicit wait when none)."""
    return dash_duo.driver.execute_script(
        "return [...document.querySelectorAll('.alert-error, .alert-warning')]"
        ".map((e) => e.innerText);"
    )


def _check_step(dash_duo, tour, i: int) -> None:
    step = tour.steps[i]
    where = f"{tour.id} step {i + 1} ({step.title})"
    n = len(tour.steps)
    dash_duo.wait_for_text_to_equal(f"#{ids.TEXT_TOUR_COUNTER}", f"step {i + 1} of {n}")
    dash_duo.wait_for_text_to_equal(f"#{ids.TEXT_TOUR_STEP_TITLE}", step.title)
    assert dash_duo.find_element(f"#{ids.TEXT_TOUR_STEP_TEXT}").text == step.text
    tab = step.state["tab"]
    until(
        lambda: (
            _query(dash_duo).get("tab", ids.TAB_WEIGHTS) == tab
            and _selected_tab(dash_duo) == TAB_LABELS[tab]
        ),
        timeout=30,
        msg=lambda: f"{where}: tab {_selected_tab(dash_duo)!r}, url {_query(dash_duo)}",
    )
    settle(dash_duo, timeout=90)
    query = _query(dash_duo)
    for key in ("model", "layer", "view", "sample", "compare", "compare_layer"):
        if key in step.state:
            assert query.get(key) == step.state[key], f"{where}: {key} in {query}"
    layer = step.state.get("layer")
    if layer:
        dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", layer, timeout=10)
    for cid, value in step.options.items():
        _wait(
            lambda cid=cid, value=value: _prop(dash_duo, cid) == value,
            20,
            lambda cid=cid: f"{where}: {cid} = {_prop(dash_duo, cid)!r}",
        )
    graphs = [MAIN_GRAPH[tab]]
    if step.focus and step.focus.startswith("graph-"):
        graphs.append(step.focus)
    for graph_id in graphs:
        wait_graph(dash_duo, graph_id, lambda g: any(t["n"] or t["rows"] for t in g["traces"]))
    assert _errors(dash_duo) == [], f"{where}: {_errors(dash_duo)}"
    if step.focus:

        def box() -> dict | None:
            return dash_duo.driver.execute_script(_FOCUS_JS, step.focus, ids.DIV_TOUR_BAR)

        def in_view() -> bool:
            b = box()
            return bool(b) and b["bar"] - 5 <= b["top"] < b["height"] - 100

        _wait(in_view, 10, lambda: f"{where}: {step.focus} is not in view: {box()}")


def _screenshot_main(dash_duo, tmp_path, name: str) -> None:
    """A screenshot cut to the main area: the page is scrolled to the step's focus, so the
    sidebar beside it is blank."""
    path = screenshot(dash_duo, tmp_path, name)
    left = dash_duo.driver.execute_script(
        "return document.querySelector('main').getBoundingClientRect().left;"
    )
    ratio = dash_duo.driver.execute_script("return window.devicePixelRatio || 1;")
    target = os.environ.get(SCREENSHOT_ENV)
    for png in [path] + ([Path(target) / name] if target else []):
        with Image.open(png) as image:
            cut = image.crop((int(left * ratio), 0, image.width, image.height))
        cut.save(png)


def test_every_tour_step_opens_its_view(dash_duo, tmp_path):
    tours = read_tours()
    app = create_app(AppConfig(upload_dir=tmp_path / "up"))
    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.start_server(app)
    dash_duo.wait_for_element(f"#{ids.DROPDOWN_TOUR_SELECT}", timeout=20)
    settle(dash_duo)
    assert not dash_duo.find_element(f"#{ids.DIV_TOUR_STEP}").is_displayed()

    for tour in tours:
        _pick_tour(dash_duo, tour.title)
        for i in range(len(tour.steps)):
            if i:
                dash_duo.find_element(f"#{ids.BUTTON_TOUR_NEXT}").click()
            _check_step(dash_duo, tour, i)
            if (tour.id, i) == SCREENSHOT:
                _screenshot_main(dash_duo, tmp_path, "tour.png")
        prev = dash_duo.find_element(f"#{ids.BUTTON_TOUR_PREV}")
        if tour.id == tours[0].id:  # Previous goes one step back, its options again
            prev.click()
            _check_step(dash_duo, tour, len(tour.steps) - 2)
            dash_duo.find_element(f"#{ids.BUTTON_TOUR_NEXT}").click()
            _check_step(dash_duo, tour, len(tour.steps) - 1)
        next_button = dash_duo.find_element(f"#{ids.BUTTON_TOUR_NEXT}")
        assert next_button.text.startswith("Finish")
        if tour.id == tours[-1].id:  # Finish leaves the tour; the view stays
            url = dash_duo.driver.current_url
            next_button.click()
            until(lambda: not dash_duo.find_element(f"#{ids.DIV_TOUR_STEP}").is_displayed(), 10)
            assert dash_duo.driver.current_url == url
            assert _prop(dash_duo, ids.DROPDOWN_TOUR_SELECT) is None

    assert dash_duo.get_logs() == []


def test_leave_a_tour_midway_and_keep_the_view(dash_duo, tmp_path):
    tour = {t.id: t for t in read_tours()}["theorem1"]
    app = create_app(AppConfig(upload_dir=tmp_path / "up"))
    dash_duo.start_server(app)
    dash_duo.wait_for_element(f"#{ids.DROPDOWN_TOUR_SELECT}", timeout=20)
    settle(dash_duo)
    _pick_tour(dash_duo, tour.title)
    _check_step(dash_duo, tour, 0)
    dash_duo.find_element(f"#{ids.BUTTON_TOUR_NEXT}").click()
    _check_step(dash_duo, tour, 1)
    url = dash_duo.driver.current_url
    dash_duo.find_element(f"#{ids.BUTTON_TOUR_LEAVE}").click()
    until(lambda: not dash_duo.find_element(f"#{ids.DIV_TOUR_STEP}").is_displayed(), 10)
    settle(dash_duo)
    assert dash_duo.driver.current_url == url and _selected_tab(dash_duo) == "Descramble"
    assert _prop(dash_duo, ids.RADIO_DESCRAMBLE_SOURCE) == "noise"  # the step's options stay
    assert "tour-active" not in dash_duo.find_element(f"#{ids.DIV_TOUR_BAR}").get_attribute("class")
    # the page works as before: another tab, the same layer
    click_tab(dash_duo, "Spectrum")
    until(lambda: _query(dash_duo).get("tab") == ids.TAB_SPECTRUM, timeout=20)
    wait_graph(dash_duo, ids.GRAPH_SPECTRUM_VALUES, lambda g: g["traces"][0]["n"] == 80)
    assert dash_duo.get_logs() == []
