"""The fit control of the Singular vectors view in a real browser: ILR's first layer fitted
with biexponentials half by half (auto split 64), then a bad split (error, vectors kept)."""

from __future__ import annotations

from typing import Any

import pytest
from dash.testing.wait import until
from e2e_helpers import screenshot, settle, type_number, wait_graph

from app import ids
from app.config import AppConfig
from app.figures.theme import FIT
from app.main import create_app

pytestmark = pytest.mark.e2e

ILR = "ilr-biexp-ndnd"

_DASHES_JS = r"""
const gd = document.querySelector(arguments[0] + ' .js-plotly-plot');
return gd && gd._fullData ? gd._fullData.map((t) => [t.line.dash, t.line.color]) : null;
"""


def choose(dash_duo: Any, dropdown_id: str, label: str) -> None:
    dash_duo.find_element(f"#{dropdown_id}").click()
    until(lambda: dash_duo.find_elements(".dash-dropdown-option"), timeout=10)
    for option in dash_duo.find_elements(".dash-dropdown-option"):
        if option.text == label:
            option.click()
            return
    raise AssertionError(f"no option {label!r} in #{dropdown_id}")


def test_biexponential_fit_of_ilr_fc1_then_a_bad_split(dash_duo, tmp_path):
    app = create_app(AppConfig(models=[ILR], upload_dir=tmp_path / "up"))
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?model={ILR}&layer=fc1&tab=vectors")
    wait_graph(dash_duo, ids.GRAPH_VECTORS_RIGHT, lambda g: len(g["traces"]) == 8)
    settle(dash_duo)
    assert not dash_duo.find_element(f"#{ids.INPUT_VECTORS_FIT_ORDER}").is_enabled()

    choose(dash_duo, ids.DROPDOWN_VECTORS_FIT_FAMILY, "biexponential")
    right = wait_graph(
        dash_duo,
        ids.GRAPH_VECTORS_RIGHT,
        lambda g: len(g["traces"]) == 8 + 16 and "R²" in g["annotations"][0],
        timeout=60,
    )
    titles = right["annotations"][:8]
    assert titles[0].endswith("<br>R² 0.989 | 0.989") and "<br>R² 0.96" in titles[1]
    fit_traces = right["traces"][1:3]  # v1: its line, then its two halves' fits
    assert [(t["n"], t["x0"], t["xlast"]) for t in fit_traces] == [(64, 0, 800), (64, 0, 800)]
    dashes = dash_duo.driver.execute_script(_DASHES_JS, f"#{ids.GRAPH_VECTORS_RIGHT}")
    assert sum(d == ["dash", FIT] for d in dashes) == 16
    hint = dash_duo.find_element(f"#{ids.DIV_VECTORS_FIT_HINT}").text
    assert "Right: split 64 (auto, where the axis restarts), x = time (ms)" in hint
    assert not dash_duo.find_element(f"#{ids.INPUT_VECTORS_FIT_ORDER}").is_enabled()
    left = wait_graph(dash_duo, ids.GRAPH_VECTORS_LEFT, lambda g: len(g["traces"]) == 8)
    assert all("R²" not in a for a in left["annotations"])  # side "right": left not fitted
    assert dash_duo.find_element(f"#{ids.DIV_VECTORS_ALERT}").text == ""
    shot = screenshot(dash_duo, tmp_path, "vectors-fit.png")
    assert shot.stat().st_size > 0

    type_number(dash_duo, ids.INPUT_VECTORS_FIT_SPLIT, "200")
    dash_duo.wait_for_contains_text(
        f"#{ids.DIV_VECTORS_ALERT}", "split point 200 lies outside 1..127", timeout=30
    )
    right = wait_graph(dash_duo, ids.GRAPH_VECTORS_RIGHT, lambda g: len(g["traces"]) == 8)
    assert all("R²" not in a for a in right["annotations"])  # still drawn, without fits
    assert "Cannot fit" in dash_duo.find_element(f"#{ids.DIV_VECTORS_ALERT}").text

    type_number(dash_duo, ids.INPUT_VECTORS_FIT_SPLIT, "64")  # back to a good split
    wait_graph(dash_duo, ids.GRAPH_VECTORS_RIGHT, lambda g: len(g["traces"]) == 24)
    until(lambda: dash_duo.find_element(f"#{ids.DIV_VECTORS_ALERT}").text == "", timeout=10)
    assert "split 64 (given)" in dash_duo.find_element(f"#{ids.DIV_VECTORS_FIT_HINT}").text
    assert dash_duo.get_logs() == []
