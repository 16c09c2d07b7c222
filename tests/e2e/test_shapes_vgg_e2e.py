"""shapes-vgg in a real browser: spectral surgery at the last pooling layer (R is 2,048 x
12,288), the top 64 in a background job with progress, the rest-of-spectrum term, and the
top singular vectors drawn as 64x64 images; the exact surgery at classifier.0 in the
request."""

from __future__ import annotations

import pytest
from dash.testing.wait import until
from e2e_helpers import (
    choose_option,
    click_tab,
    compute_top_k_surgery,
    screenshot,
    settle,
    wait_graph,
)

from app import ids
from app.config import AppConfig
from app.main import create_app

pytestmark = pytest.mark.e2e


def _text(dash_duo, cid: str) -> str:
    return dash_duo.find_element(f"#{cid}").text


def _split(dash_duo, name: str) -> None:
    if not _text(dash_duo, ids.DROPDOWN_SURGERY_SPLIT).startswith(f"{name} "):
        choose_option(dash_duo, ids.DROPDOWN_SURGERY_SPLIT, f"{name} ")


def test_shapes_vgg_top_k_surgery_at_the_last_pooling_layer(
    dash_duo, tmp_path, no_leftover_jobs, slow_krylov
):
    app = create_app(AppConfig(models=["shapes-vgg"], upload_dir=tmp_path / "up"))
    dash_duo.driver.set_window_size(1400, 4200)
    dash_duo.start_server(app)
    dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", "shapes-vgg", timeout=30)
    click_tab(dash_duo, "Spectral surgery")
    until(lambda: len(dash_duo.find_elements(".thumb")) > 0, timeout=60)

    # classifier.0: r = 64, the exact surgery while the page waits
    _split(dash_duo, "classifier.0")
    alpha = wait_graph(
        dash_duo,
        ids.GRAPH_SURGERY_ALPHA,
        lambda g: (g["traces"][0]["rows"], g["traces"][0]["cols"]) == (4, 64),
        timeout=90,
    )
    assert alpha is not None
    check = _text(dash_duo, ids.TEXT_SURGERY_CHECK)
    assert float(check.split("= ")[-1]) < 1e-9

    # features.17: r = 2,048, the top 64 by a randomized SVD in the background
    _split(dash_duo, "features.17")
    compute_top_k_surgery(dash_duo, r=2048, outputs=4)
    # the top singular vectors as 64 x 64 pictures (the mean over the colour channels)
    vectors = wait_graph(dash_duo, ids.GRAPH_SURGERY_VECTORS, lambda g: len(g["traces"]) > 0)
    shapes = {(t["rows"], t["cols"]) for t in vectors["traces"] if t.get("rows")}
    assert (64, 64) in shapes, shapes
    screenshot(dash_duo, tmp_path, "surgery-shapes-vgg.png")

    # float32 Jacobian products: a surgery of its own (Compute again), the same picture
    dash_duo.find_element(f"#{ids.RADIO_SURGERY_PRECISION} input[value='float32']").click()
    dash_duo.wait_for_contains_text(f"#{ids.TEXT_SURGERY_COMPUTE}", "r = 2,048", timeout=30)
    dash_duo.find_element(f"#{ids.JOB_SURGERY_COMPUTE.run}").click()
    dash_duo.wait_for_contains_text(
        f"#{ids.DIV_SURGERY_SUMMARY}", "randomized SVD; float32 products", timeout=120
    )
    check = _text(dash_duo, ids.TEXT_SURGERY_CHECK)
    assert "rest" in check and float(check.split("= ")[-1]) < 1e-6
    settle(dash_duo)
    assert dash_duo.get_logs() == []
