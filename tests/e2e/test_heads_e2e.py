"""A Hugging Face folder with its config.json in a real browser: the Overview's Role filter
shows the attention layers only, the Block column groups them, and an attention projection
offers one matrix view per head in a dropdown; a head's view is that head's rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from dash.testing.wait import until
from e2e_helpers import (
    choose_option,
    click_tab,
    screenshot,
    settle,
    text_of,
    wait_graph,
    wait_layer_names,
)
from safetensors.torch import save_file
from selenium.common.exceptions import StaleElementReferenceException

from app import ids
from app.config import AppConfig
from app.main import create_app

pytestmark = pytest.mark.e2e

D_MODEL, HEADS, KV_HEADS = 64, 8, 2
D = D_MODEL // HEADS


def _folder(tmp_path):
    g = torch.Generator().manual_seed(0)
    folder = tmp_path / "tiny-llama"
    folder.mkdir()
    tensors = {"model.embed_tokens.weight": torch.randn(100, D_MODEL, generator=g)}
    for b in range(2):
        p = f"model.layers.{b}"
        tensors |= {
            f"{p}.self_attn.q_proj.weight": torch.randn(HEADS * D, D_MODEL, generator=g),
            f"{p}.self_attn.k_proj.weight": torch.randn(KV_HEADS * D, D_MODEL, generator=g),
            f"{p}.self_attn.v_proj.weight": torch.randn(KV_HEADS * D, D_MODEL, generator=g),
            f"{p}.self_attn.o_proj.weight": torch.randn(D_MODEL, HEADS * D, generator=g),
            f"{p}.mlp.up_proj.weight": torch.randn(128, D_MODEL, generator=g),
            f"{p}.mlp.down_proj.weight": torch.randn(D_MODEL, 128, generator=g),
        }
    tensors["lm_head.weight"] = torch.randn(100, D_MODEL, generator=g)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "model.safetensors"))
    config = {
        "model_type": "llama",
        "hidden_size": D_MODEL,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder, tensors


def _column(dash_duo, column: str) -> list[str]:
    """The texts of one Overview column (read again when the table was redrawn meanwhile)."""
    for _ in range(5):
        try:
            cells = dash_duo.find_elements(
                f"#{ids.TABLE_OVERVIEW_LAYERS} td[data-dash-column='{column}']"
            )
            return [c.text for c in cells]
        except StaleElementReferenceException:
            continue
    return []


def test_role_filter_and_per_head_views(dash_duo, tmp_path):
    folder, tensors = _folder(tmp_path)
    app = create_app(AppConfig(models=[str(folder)], upload_dir=tmp_path / "up"))
    dash_duo.driver.set_window_size(1500, 1200)
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?tab=overview")
    wait_layer_names(dash_duo, at_least=14)
    until(lambda: len(_column(dash_duo, "name")) == 14, timeout=40)
    settle(dash_duo)
    roles = dict(zip(_column(dash_duo, "name"), _column(dash_duo, "role"), strict=True))
    assert roles["model.embed_tokens"] == "embedding" and roles["lm_head"] == "head"
    assert roles["model.layers.1.mlp.up_proj"] == "mlp"
    blocks = _column(dash_duo, "block")
    assert blocks.count("model.layers.0") == 6 and blocks.count("model.layers.1") == 6

    # the Role filter: attention only (4 projections in each of 2 blocks)
    radio = f"//div[@id='{ids.RADIO_OVERVIEW_ROLE}']//label[normalize-space()='attention']"
    dash_duo.driver.find_element("xpath", radio).click()
    until(lambda: len(_column(dash_duo, "name")) == 8, timeout=20)
    settle(dash_duo)
    assert set(_column(dash_duo, "role")) == {"attention"}
    screenshot(dash_duo, tmp_path, "overview-attention-only.png")

    # a filtered row still opens its layer; q_proj has one view per query head
    name = "model.layers.1.self_attn.q_proj"

    def click_row() -> bool:  # the table may be redrawn between finding and clicking
        try:
            cells = dash_duo.find_elements(
                f"#{ids.TABLE_OVERVIEW_LAYERS} td[data-dash-column='name']"
            )
            next(c for c in cells if c.text == name).click()
            return True
        except (StaleElementReferenceException, StopIteration):
            return False

    until(click_row, timeout=20)
    dash_duo.wait_for_contains_text(f"#{ids.DIV_LAYER_HEADER}", name, timeout=20)
    until(lambda: dash_duo.find_element(f"#{ids.DROPDOWN_MATRIX_VIEW}").is_displayed(), 20)
    assert not dash_duo.find_element(f"#{ids.RADIO_MATRIX_VIEW}").is_displayed()
    choose_option(dash_duo, ids.DROPDOWN_MATRIX_VIEW, "head 5")
    until(lambda: "view=head" in dash_duo.driver.current_url, timeout=20)
    click_tab(dash_duo, "Spectrum")
    settle(dash_duo)
    dash_duo.wait_for_contains_text(f"#{ids.GRAPH_SPECTRUM_VALUES}", f"({D}×{D_MODEL})", 30)
    expected = np.linalg.svd(
        tensors[f"{name}.weight"][5 * D : 6 * D].double().numpy(), compute_uv=False
    )
    cond = float(text_of(dash_duo, f"#{ids.stat_id('spectrum', 'cond')}"))
    assert cond == pytest.approx(expected[0] / expected[-1], rel=1e-3)  # printed at 4 digits
    # the heads panel: W_QK and W_OV of the block's 8 heads, one heatmap row per head
    until(lambda: dash_duo.find_element(f"#{ids.DIV_HEADS_PANEL}").is_displayed(), 30)
    g = wait_graph(dash_duo, ids.GRAPH_HEADS, lambda g: len(g["traces"]) == 2)
    assert [t["rows"] for t in g["traces"]] == [HEADS, HEADS]
    assert [t["cols"] for t in g["traces"]] == [D, D]
    assert f"{HEADS} query heads sharing {KV_HEADS}" in text_of(dash_duo, f"#{ids.TEXT_HEADS_NOTE}")
    screenshot(dash_duo, tmp_path, "spectrum-of-one-head.png")
    dash_duo.driver.execute_script(
        "document.getElementById(arguments[0]).scrollIntoView();", ids.DIV_HEADS_PANEL
    )
    screenshot(dash_duo, tmp_path, "heads-panel.png")
    settle(dash_duo)
    assert dash_duo.get_logs() == []
