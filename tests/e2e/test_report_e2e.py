"""The HTML report opens in a real browser, offline, with every figure drawn."""

from __future__ import annotations

import pytest
from dash.testing.wait import until

from app.config import AppConfig
from app.export import export_analysis, html_report
from app.services import Services

pytestmark = pytest.mark.e2e


def test_report_opens_with_every_figure_drawn(dash_duo, tmp_path):
    services = Services(AppConfig(models=["deernet"], upload_dir=tmp_path / "up"))
    results = [export_analysis(services, "deernet", "fc1", a) for a in ("svd", "descramble")]
    path = tmp_path / "report.html"
    path.write_text(html_report(results), encoding="utf-8")
    expected = sum(len(r.figures) for r in results)
    dash_duo.driver.get(path.as_uri())
    drawn = "return document.querySelectorAll('.plotly-graph-div .main-svg').length;"
    graphs = "return document.querySelectorAll('.plotly-graph-div').length;"
    until(lambda: dash_duo.driver.execute_script(graphs) == expected, timeout=30)
    until(lambda: dash_duo.driver.execute_script(drawn) >= expected, timeout=30)
    assert "deernet › fc1" in dash_duo.driver.title
    dash_duo.driver.save_screenshot(str(tmp_path / "report.png"))
    assert [e for e in dash_duo.get_logs() if e.get("level") == "SEVERE"] == []
