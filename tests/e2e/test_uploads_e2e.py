"""Uploads in a real browser: file input -> streamed POST -> model picker and layer table."""

from __future__ import annotations

import pytest
import torch
from e2e_helpers import settle, wait_graph, wait_layer_list
from safetensors.torch import save_file

from app import ids
from app.config import AppConfig
from app.main import create_app

pytestmark = pytest.mark.e2e


def test_upload_safetensors_then_a_broken_file(dash_duo, tmp_path):
    model = tmp_path / "my_encoder.safetensors"
    save_file(
        {"encoder.weight": torch.randn(24, 10), "decoder.weight": torch.randn(10, 24)}, str(model)
    )
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00\x01 this is not a safetensors file")

    app = create_app(AppConfig(models=[], upload_dir=tmp_path / "uploads"))
    dash_duo.start_server(app)
    dash_duo.wait_for_element(f"#{ids.INPUT_UPLOAD_FILE}", timeout=20)

    dash_duo.find_element(f"#{ids.INPUT_UPLOAD_FILE}").send_keys(str(model))
    dash_duo.wait_for_contains_text(
        f"#{ids.DIV_UPLOAD_STATUS}", "Opened my_encoder.safetensors", timeout=30
    )
    dash_duo.wait_for_contains_text(f"#{ids.DROPDOWN_MODEL_SELECT}", "my_encoder.safetensors")
    settle(dash_duo)
    wait_layer_list(dash_duo, ["decoder", "encoder"])
    heat = wait_graph(
        dash_duo, ids.GRAPH_WEIGHTS_HEATMAP, lambda g: g["traces"][0]["type"] == "heatmap"
    )
    assert (heat["traces"][0]["rows"], heat["traces"][0]["cols"]) == (10, 24)  # decoder: 10x24
    assert "model=upload-" in dash_duo.driver.current_url

    dash_duo.find_element(f"#{ids.INPUT_UPLOAD_FILE}").send_keys(str(broken))
    dash_duo.wait_for_contains_text(f"#{ids.DIV_UPLOAD_STATUS}", "Upload failed", timeout=30)
    status = dash_duo.find_element(f"#{ids.DIV_UPLOAD_STATUS}").text
    assert "broken.safetensors" in status and "Traceback" not in status
    # the page keeps working with the previous model
    wait_layer_list(dash_duo, ["decoder", "encoder"])
    settle(dash_duo)
    assert dash_duo.get_logs() == []
