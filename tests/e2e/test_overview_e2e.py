"""The Model overview tab in a real browser: the spectral table of digits-5layer with its
alpha values, the sparklines, the CSV download, and a row click that opens the layer; a
sharded Llama-shaped block whose large layers fill in from the background job."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from dash.testing.wait import until
from e2e_helpers import progress_value, screenshot, settle, wait_graph, wait_layer_names
from safetensors.torch import save_file

from app import ids
from app.config import AppConfig
from app.main import create_app
from app.services import overview as overview_service
from app.services.overview import INLINE_MAX_ELEMENTS
from svdcore.esd import TABLE_COLUMNS

pytestmark = pytest.mark.e2e


def _cells(dash_duo, column: str) -> list:
    return dash_duo.find_elements(f"#{ids.TABLE_OVERVIEW_LAYERS} td[data-dash-column='{column}']")


def _texts(dash_duo, column: str) -> list[str]:
    return [c.text for c in _cells(dash_duo, column)]


def test_overview_table_download_and_row_click(dash_duo, tmp_path):
    app = create_app(AppConfig(models=["digits", "digits-5layer"], upload_dir=tmp_path / "up"))
    dash_duo.driver.set_window_size(1400, 1300)
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?model=digits-5layer&tab=overview")
    wait_layer_names(dash_duo, at_least=5)
    until(lambda: len(_texts(dash_duo, "name")) == 5, timeout=30)
    assert _texts(dash_duo, "name") == ["fc1", "fc2", "fc3", "fc4", "fc5"]
    alphas = [float(t) for t in _texts(dash_duo, "alpha")]
    assert all(1.0 < a < 10.0 for a in alphas)
    g = wait_graph(dash_duo, ids.GRAPH_OVERVIEW_SPARKLINES, lambda g: len(g["traces"]) == 5)
    assert g["ytype"] == "log"
    assert any("fc3 · α=" in a for a in g["annotations"])
    settle(dash_duo)
    screenshot(dash_duo, tmp_path, "overview.png")

    # the CSV download: a file named after the model, a header and one line per layer
    dash_duo.find_element(f"#{ids.BUTTON_OVERVIEW_CSV}").click()
    target = Path(dash_duo.download_path) / "digits-5layer-spectral-table.csv"
    until(lambda: target.exists() and target.stat().st_size > 0, timeout=20)
    lines = target.read_text().strip().splitlines()
    assert lines[0].split(",") == list(TABLE_COLUMNS)
    assert len(lines) == 6

    # a click on the row of fc3 opens that layer in the Weights tab
    next(c for c in _cells(dash_duo, "name") if c.text == "fc3").click()
    dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", "fc3", timeout=20)
    until(lambda: "layer=fc3" in dash_duo.driver.current_url, timeout=20)
    assert "tab=overview" not in dash_duo.driver.current_url
    wait_graph(dash_duo, ids.GRAPH_WEIGHTS_HEATMAP, lambda g: g["traces"][0]["type"] == "heatmap")
    settle(dash_duo)
    assert dash_duo.get_logs() == []


def _fraction(dash_duo) -> float:
    """How far the overview job's progress bar is (value / max)."""
    bar = dash_duo.find_element(f"#{ids.JOB_OVERVIEW.progress}")
    return progress_value(dash_duo, ids.JOB_OVERVIEW.progress) / float(bar.get_attribute("max"))


def _llama_folder(folder: Path) -> Path:
    """A Llama-shaped decoder block in two safetensors shards with an index: q/k/v/o and
    the MLP's up projection above the page's inline size (each computed by the job), the
    norms and a small embedding."""
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    h = 1056  # h^2 > INLINE_MAX_ELEMENTS
    block = "model.layers.0"
    first = {
        "model.embed_tokens.weight": torch.randn(300, h, generator=g).to(torch.bfloat16),
        f"{block}.input_layernorm.weight": torch.ones(h),
        **{
            f"{block}.self_attn.{p}_proj.weight": (torch.randn(h, h, generator=g) / 32).to(
                torch.bfloat16
            )
            for p in "qkvo"
        },
    }
    second = {f"{block}.mlp.up_proj.weight": torch.randn(2 * h, h, generator=g) / 32}
    weight_map = {}
    for i, part in enumerate((first, second), start=1):
        name = f"model-{i:05d}-of-00002.safetensors"
        save_file(part, str(folder / name))
        weight_map.update(dict.fromkeys(part, name))
    index = {"metadata": {}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    assert (h * h > INLINE_MAX_ELEMENTS) and (300 * h <= INLINE_MAX_ELEMENTS)
    return folder


@pytest.fixture
def slow_rows(monkeypatch):
    """Each large row takes a little longer, so the test sees the job's progress move (the
    forked job inherits this)."""
    real = overview_service.layer_spectrum

    def slow(net, name, **kw):
        shape = net.layer(name).matrix_shape
        if shape and shape[0] * shape[1] > INLINE_MAX_ELEMENTS:
            time.sleep(0.6)
        return real(net, name, **kw)

    monkeypatch.setattr(overview_service, "layer_spectrum", slow)


def test_overview_of_a_sharded_llama_block_fills_in_layer_by_layer(
    dash_duo, tmp_path, slow_rows, no_leftover_jobs
):
    """No layer skipped for its size: the small rows at once, the five large ones pending
    with a progress bar, filling in as the job finishes each; a reload shows the complete
    table at once from the cache."""
    folder = _llama_folder(tmp_path / "llama")
    app = create_app(
        AppConfig(models=[str(folder)], upload_dir=tmp_path / "up", cache_dir=tmp_path / "c")
    )
    dash_duo.driver.set_window_size(1400, 1300)
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?tab=overview")
    until(lambda: len(_texts(dash_duo, "name")) == 6, timeout=40)
    large = {f"model.layers.0.self_attn.{p}_proj" for p in "qkvo"} | {"model.layers.0.mlp.up_proj"}

    def notes() -> dict[str, str]:
        return dict(zip(_texts(dash_duo, "name"), _texts(dash_duo, "note"), strict=True))

    first = notes()
    assert first["model.embed_tokens"] == "" and float(_texts(dash_duo, "alpha")[0] or 0) >= 0
    until(lambda: dash_duo.find_element(f"#{ids.JOB_OVERVIEW.progress_div}").is_displayed(), 20)
    assert "5 large layers" in dash_duo.find_element(f"#{ids.TEXT_OVERVIEW_JOB_NOTE}").text
    # partway: some large rows computed, others still pending, the bar between its ends
    until(
        lambda: (
            0 < sum(notes()[n] != "computing in the background…" for n in large) < 5
            and 0 < _fraction(dash_duo) < 1
        ),
        timeout=40,
    )
    assert "of 5 layers" in dash_duo.find_element(f"#{ids.JOB_OVERVIEW.text}").text
    until(lambda: all(notes()[n] == "" for n in large), timeout=60)
    alphas = dict(zip(_texts(dash_duo, "name"), _texts(dash_duo, "alpha"), strict=True))
    assert all(float(alphas[n]) > 1 for n in large)
    assert "still computing" not in dash_duo.find_element(f"#{ids.DIV_OVERVIEW_SUMMARY}").text
    until(lambda: not dash_duo.find_element(f"#{ids.DIV_OVERVIEW_JOB}").is_displayed(), 20)
    wait_graph(dash_duo, ids.GRAPH_OVERVIEW_SPARKLINES, lambda g: len(g["traces"]) == 6)
    settle(dash_duo)
    screenshot(dash_duo, tmp_path, "overview-llama.png")

    dash_duo.driver.refresh()  # from the cache: complete at once, no job
    until(lambda: len(_texts(dash_duo, "name")) == 6, timeout=30)
    assert all(notes()[n] == "" for n in large)
    assert not dash_duo.find_element(f"#{ids.DIV_OVERVIEW_JOB}").is_displayed()
    assert dash_duo.get_logs() == []
