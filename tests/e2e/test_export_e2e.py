"""The Export bar in a real browser: the visible tab's figures as PNG and SVG files, the
arrays behind the view as .npz and CSV equal to the engine's, with the view's own options,
and a report that holds the layer's figures."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from dash.testing.wait import until
from e2e_helpers import click_tab, settle, wait_graph, wait_layer_names

import svdcore as sc
from app import ids
from app.config import AppConfig
from app.main import create_app

pytestmark = pytest.mark.e2e


def _downloaded(dash_duo, suffix: str, before: set[str]) -> list[Path]:
    folder = Path(dash_duo.download_path)
    return sorted(
        p
        for p in folder.glob(f"*{suffix}")
        if p.name not in before and not p.name.endswith(".crdownload")
    )


def _names(dash_duo) -> set[str]:
    return {p.name for p in Path(dash_duo.download_path).glob("*")}


def test_export_images_arrays_and_report(dash_duo, tmp_path):
    app = create_app(AppConfig(models=["deernet"], upload_dir=tmp_path / "up"))
    dash_duo.driver.set_window_size(1400, 1100)
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?model=deernet&layer=fc1&tab=weights")
    wait_layer_names(dash_duo, at_least=2)
    wait_graph(dash_duo, ids.GRAPH_WEIGHTS_HEATMAP, lambda g: g["traces"][0]["type"] == "heatmap")
    settle(dash_duo)
    W = sc.zoo.load("deernet").matrix("fc1").numpy()

    # the weights as .npz: the full matrix, not its picture
    before = _names(dash_duo)
    dash_duo.find_element(f"#{ids.BUTTON_EXPORT_NPZ}").click()
    until(lambda: _downloaded(dash_duo, ".npz", before), timeout=30)
    (npz,) = _downloaded(dash_duo, ".npz", before)
    assert npz.name == "deernet-fc1-weights.npz"
    with np.load(npz, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["W"], W)

    # the figures of the tab as SVG and PNG, drawn by plotly in the page
    for button, suffix in ((ids.BUTTON_EXPORT_SVG, ".svg"), (ids.BUTTON_EXPORT_PNG, ".png")):
        before = _names(dash_duo)
        dash_duo.find_element(f"#{button}").click()
        until(lambda suffix=suffix, before=before: _downloaded(dash_duo, suffix, before), 30)
        (image,) = _downloaded(dash_duo, suffix, before)
        assert image.name.endswith(f"{ids.GRAPH_WEIGHTS_HEATMAP}{suffix}")
        head = image.read_bytes()[:64]
        assert head.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in head

    # the singular vectors with the view's own k, as CSV files
    click_tab(dash_duo, "Singular vectors")
    wait_graph(dash_duo, ids.GRAPH_VECTORS_RIGHT, lambda g: len(g["traces"]) >= 8)
    settle(dash_duo)
    before = _names(dash_duo)
    dash_duo.find_element(f"#{ids.BUTTON_EXPORT_CSV}").click()
    until(lambda: _downloaded(dash_duo, ".zip", before), timeout=30)
    (archive,) = _downloaded(dash_duo, ".zip", before)
    with zipfile.ZipFile(archive) as z:
        S = np.loadtxt(io.StringIO(z.read("S.csv").decode()), delimiter=",")
        Vh = np.loadtxt(io.StringIO(z.read("Vh.csv").decode()), delimiter=",")
    ref = sc.svd(W)
    np.testing.assert_allclose(S, ref.S.numpy()[:8], rtol=1e-5)  # the slider's k = 8
    np.testing.assert_allclose(np.abs(Vh @ ref.Vh.numpy()[:8].T), np.eye(8), atol=1e-3)

    # one HTML report of the layer
    before = _names(dash_duo)
    dash_duo.find_element(f"#{ids.BUTTON_EXPORT_REPORT}").click()
    until(lambda: _downloaded(dash_duo, ".html", before), timeout=60)
    (report,) = _downloaded(dash_duo, ".html", before)
    page = report.read_text(encoding="utf-8")
    assert page.count('class="plotly-graph-div"') >= 4 and "condition_number" in page
    dash_duo.wait_for_contains_text(f"#{ids.TEXT_EXPORT_STATUS}", "Saved")

    # the Overview has its own CSV: the bar says so instead of failing
    click_tab(dash_duo, "Overview")
    settle(dash_duo)
    dash_duo.find_element(f"#{ids.BUTTON_EXPORT_NPZ}").click()
    dash_duo.wait_for_contains_text(f"#{ids.TEXT_EXPORT_STATUS}", "own CSV button")
    assert dash_duo.get_logs() == []
