"""Browser helpers for the dash_duo tests: waiting, reading plotted data, clicking."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import psutil
import pytest
from dash.testing.wait import until
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from app import ids

SCREENSHOT_ENV = "SVDSCOPE_SCREENSHOT_DIR"

# Summaries of a graph's _fullData / _fullLayout (typed arrays do not cross to Python well).
_GRAPH_JS = r"""
const gd = document.querySelector(arguments[0] + ' .js-plotly-plot');
if (!gd || !gd._fullData) { return null; }
const len = (a) => (a == null ? null : a.length);
return {
  traces: gd._fullData.map((t, i) => ({
    type: t.type,
    n: len(t.y),
    rows: t.z ? t.z.length : null,
    cols: t.z && t.z[0] ? t.z[0].length : null,
    // zmid is given with zmin/zmax, so plotly keeps it in data, not in _fullData
    zmid: gd.data[i] && gd.data[i].zmid !== undefined ? gd.data[i].zmid : null,
    zmin: t.zmin === undefined ? null : t.zmin,
    zmax: t.zmax === undefined ? null : t.zmax,
    x0: t.x ? Number(t.x[0]) : null,
    xlast: t.x && t.x.length ? Number(t.x[t.x.length - 1]) : null,
  })),
  title: gd._fullLayout.title ? gd._fullLayout.title.text : '',
  xtitles: Object.keys(gd._fullLayout).filter((k) => /^xaxis\d*$/.test(k))
    .map((k) => (gd._fullLayout[k].title ? gd._fullLayout[k].title.text : '')),
  ytype: gd._fullLayout.yaxis.type,
  annotations: (gd._fullLayout.annotations || []).map((a) => a.text),
};
"""


def text_of(dash_duo: Any, selector: str, attempts: int = 5) -> str:
    """The element's text, read again when a callback replaced the element between finding
    and reading it (a stale element reference)."""
    for _ in range(attempts - 1):
        try:
            return dash_duo.find_element(selector).text
        except StaleElementReferenceException:
            continue
    return dash_duo.find_element(selector).text


def settle(dash_duo: Any, timeout: float = 40) -> None:
    """Wait until no callback is pending."""
    until(lambda: dash_duo.redux_state_rqs == [], timeout=timeout, poll=0.2)


def graph(dash_duo: Any, graph_id: str) -> dict[str, Any] | None:
    return dash_duo.driver.execute_script(_GRAPH_JS, f"#{graph_id}")


def wait_graph(dash_duo: Any, graph_id: str, check, timeout: float = 40) -> dict[str, Any]:
    """Wait until graph_id's plotted data satisfies check(summary); return the summary."""
    found: dict[str, Any] = {}

    def ready() -> bool:
        summary = graph(dash_duo, graph_id)
        if summary and summary["traces"] and check(summary):
            found.update(summary)
            return True
        return False

    until(ready, timeout=timeout, poll=0.3, msg=lambda: f"{graph_id}: {graph(dash_duo, graph_id)}")
    return found


def click_tab(dash_duo: Any, label: str) -> None:
    xpath = f"//div[@id='{ids.TABS_VIEW_SELECT}']//*[normalize-space()='{label}']"
    dash_duo.driver.find_element(By.XPATH, xpath).click()


def layer_cells(dash_duo: Any) -> list[Any]:
    return dash_duo.find_elements(f"#{ids.TABLE_LAYER_LIST} td[data-dash-column='name']")


def layer_names(dash_duo: Any) -> list[str]:
    return [cell.text for cell in layer_cells(dash_duo)]


def wait_layer_names(dash_duo: Any, *, at_least: int = 1, timeout: float = 30) -> list[str]:
    """The layer table's names once it lists at least ``at_least`` rows (the table fills in a
    callback that may not have been issued yet when the page first settles)."""
    until(lambda: len(layer_names(dash_duo)) >= at_least, timeout=timeout)
    return layer_names(dash_duo)


def wait_layer_list(dash_duo: Any, expected: list[str], timeout: float = 30) -> None:
    """Wait until the layer table lists exactly ``expected``; fail naming what it shows."""
    until(
        lambda: layer_names(dash_duo) == expected,
        timeout=timeout,
        msg=lambda: f"layer table shows {layer_names(dash_duo)}, expected {expected}",
    )


def click_layer(dash_duo: Any, name: str) -> None:
    until(lambda: name in layer_names(dash_duo), timeout=30)
    for cell in layer_cells(dash_duo):
        if cell.text == name:
            cell.click()
            return


def choose_option(dash_duo: Any, dropdown_id: str, label_start: str) -> None:
    """Open a dcc.Dropdown and click the option whose label starts with `label_start`."""
    dash_duo.find_element(f"#{dropdown_id}").click()
    options = dash_duo.find_elements(".dash-dropdown-option")
    for option in options:
        if option.text.startswith(label_start):
            option.click()
            return
    raise AssertionError(
        f"no option of {dropdown_id} starts with {label_start!r}: {[o.text for o in options]}"
    )


def select_model(dash_duo: Any, label_start: str) -> None:
    choose_option(dash_duo, ids.DROPDOWN_MODEL_SELECT, label_start)


def screenshot(dash_duo: Any, tmp_path: Path, name: str) -> Path:
    """Save a PNG under tmp_path, and into $SVDSCOPE_SCREENSHOT_DIR when it is set."""
    settle(dash_duo)
    path = tmp_path / name
    dash_duo.driver.save_screenshot(str(path))
    target = os.environ.get(SCREENSHOT_ENV)
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)
    return path


def type_number(dash_duo: Any, input_id: str, value: str) -> None:
    """Replace the content of a numeric input and submit it."""
    box = dash_duo.find_element(f"#{input_id}")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(value, Keys.ENTER)


def progress_value(dash_duo: Any, progress_id: str) -> float:
    """The current value of a progress bar (0 before the job reports)."""
    value = dash_duo.find_element(f"#{progress_id}").get_attribute("value")
    return float(value or 0)


def job_processes() -> list[psutil.Process]:
    """Background jobs are forked children of this process (the server runs in a thread)."""
    return [p for p in psutil.Process().children() if "python" in p.name().lower()]


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def parse_number(text: str) -> float | None:
    """The first number in a page text ("3.142", "1.2e-05", "42.0 %", "−0.5"), or None."""
    found = _NUMBER.search(text.replace("\N{MINUS SIGN}", "-"))
    return float(found.group()) if found else None


def printed_rel(digits: int) -> float:
    """Relative tolerance of a value printed with `digits` significant digits (.Ng, or .{N-1}e):
    half a unit of the last digit is at most 0.5 * 10^(1 - digits) of the value; 1 % more
    allows for the value being recomputed along another path (a job's process, the
    service's cache) and for the rounding of the check itself."""
    return 0.505 * 10.0 ** (1 - digits)


def wait_for_number(
    dash_duo: Any,
    selector: str,
    value: float,
    *,
    digits: int | None = None,
    abs_tol: float = 0.0,
    timeout: float = 20,
) -> float:
    """Wait until the element's text shows `value`: the number parsed out of it is within
    printed_rel(digits) (and/or abs_tol) of `value`. Returns the number shown."""
    rel = printed_rel(digits) if digits is not None else 0.0
    target = pytest.approx(value, rel=rel, abs=abs_tol)

    def shown() -> float | None:
        try:
            return parse_number(text_of(dash_duo, selector))
        except (NoSuchElementException, StaleElementReferenceException):  # not rendered yet
            return None

    until(
        lambda: (n := shown()) is not None and n == target,
        timeout=timeout,
        msg=f"{selector} does not show {value!r} (rel {rel}, abs {abs_tol})",
    )
    return shown()


def compute_top_k_surgery(dash_duo: Any, *, r: int, outputs: int, k: int = 64) -> str:
    """At a split of r components shown on the Surgery tab (r > SYNC_MAX_RANK): press
    Compute, see the job's bar move and its block steps, wait for the k-component
    contributions of ``outputs`` outputs and the summary "top k of r", and check that the
    parts add up with the rest-of-spectrum term; returns the check's text."""
    dash_duo.wait_for_contains_text(f"#{ids.TEXT_SURGERY_COMPUTE}", f"r = {r:,}", timeout=30)
    compute = dash_duo.find_element(f"#{ids.TEXT_SURGERY_COMPUTE}").text
    assert f"The top {k} come from a randomized SVD" in compute
    job = ids.JOB_SURGERY_COMPUTE
    dash_duo.find_element(f"#{job.run}").click()
    until(lambda: progress_value(dash_duo, job.progress) > 0, timeout=60)
    dash_duo.wait_for_contains_text(f"#{job.text}", "block step", timeout=20)
    wait_graph(
        dash_duo,
        ids.GRAPH_SURGERY_ALPHA,
        lambda g: (g["traces"][0]["rows"], g["traces"][0]["cols"]) == (outputs, k),
        timeout=120,
    )
    dash_duo.wait_for_contains_text(
        f"#{ids.DIV_SURGERY_SUMMARY}", f"top {k} of r = {r:,} components", timeout=20
    )
    check = dash_duo.find_element(f"#{ids.TEXT_SURGERY_CHECK}").text
    assert "rest" in check and float(check.split("= ")[-1]) < 1e-9
    dash_duo.wait_for_contains_text(
        f"#{ids.DIV_SURGERY_BIAS_NOTES}", "Rest of the spectrum", timeout=20
    )
    return check
