"""The Compare tab's whole-checkpoint table in a real browser: a fine-tune against its base
(numbers equal to svdcore's, a large layer filled in by the background job), a click on a
row compares that layer, and a PEFT adapter folder as model B is merged into A."""

from __future__ import annotations

import json

import pytest
import torch
from dash.testing.wait import until
from e2e_helpers import screenshot, settle, text_of, wait_layer_names
from safetensors.torch import save_file
from selenium.common.exceptions import StaleElementReferenceException

import app.services.finetune as finetune_service
import svdcore as sc
from app import ids
from app.config import AppConfig
from app.main import create_app

pytestmark = pytest.mark.e2e


def _checkpoints(tmp_path):
    g = torch.Generator().manual_seed(0)
    base = {
        "enc.weight": torch.randn(64, 48, generator=g),
        "big.weight": torch.randn(300, 200, generator=g),
        "dec.weight": torch.randn(48, 64, generator=g),
    }
    low = torch.randn(64, 2, generator=g) @ torch.randn(2, 48, generator=g)
    tuned = {
        "enc.weight": base["enc.weight"] + 0.1 * low,
        "big.weight": base["big.weight"] + 0.01 * torch.randn(300, 200, generator=g),
        "dec.weight": base["dec.weight"].clone(),
    }
    save_file(base, str(tmp_path / "base.safetensors"))
    save_file(tuned, str(tmp_path / "tuned.safetensors"))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    save_file(
        {
            "base_model.model.dec.lora_A.weight": torch.randn(3, 64, generator=g),
            "base_model.model.dec.lora_B.weight": torch.randn(48, 3, generator=g),
        },
        str(adapter / "adapter_model.safetensors"),
    )
    config = {"peft_type": "LORA", "r": 3, "lora_alpha": 6}
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    return tmp_path / "base.safetensors", tmp_path / "tuned.safetensors", adapter


def _table(dash_duo, table_id: str) -> dict[str, dict[str, str]]:
    """A table's cells by layer and column (read again if redrawn meanwhile)."""
    for _ in range(5):
        try:
            table = dash_duo.find_element(f"#{table_id}")
            out: dict[str, dict[str, str]] = {}
            for tr in table.find_elements("css selector", "tr"):
                cells = tr.find_elements("css selector", "td[data-dash-column]")
                row = {c.get_attribute("data-dash-column"): c.text for c in cells}
                if row.get("name"):
                    out[row["name"]] = row
            return out
        except StaleElementReferenceException:
            continue
    return {}


def _rows(dash_duo) -> dict[str, dict[str, str]]:
    return _table(dash_duo, ids.TABLE_FINETUNE_LAYERS)


def _overview_cells(dash_duo) -> dict[str, dict[str, str]]:
    return _table(dash_duo, ids.TABLE_OVERVIEW_LAYERS)


def test_finetune_table_job_click_and_adapter(dash_duo, tmp_path, monkeypatch):
    monkeypatch.setattr(finetune_service, "INLINE_MAX_ELEMENTS", 10_000)  # "big" is large
    base, tuned, adapter = _checkpoints(tmp_path)
    config = AppConfig(models=[str(base), str(tuned), str(adapter)], upload_dir=tmp_path / "up")
    app = create_app(config)
    dash_duo.driver.set_window_size(1400, 1300)
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?model=base&layer=enc&tab=compare&compare=tuned")
    wait_layer_names(dash_duo, at_least=3)
    until(lambda: dash_duo.find_element(f"#{ids.DIV_FINETUNE_PANEL}").is_displayed(), 30)
    # "big" comes from the job; then all three rows are there
    until(lambda: _rows(dash_duo).get("big", {}).get("rel_change", "") != "", timeout=60)
    rows = _rows(dash_duo)
    net_a, net_b = sc.load_model(base), sc.load_model(tuned)
    for name in ("enc", "big"):
        d = sc.layer_delta(net_a.matrix(name), net_b.matrix(name), k=8)
        assert float(rows[name]["rel_change"]) == pytest.approx(d.rel_change, rel=1e-3)
        assert int(rows[name]["delta_rank90"]) == d.delta_rank90
    assert int(rows["enc"]["delta_rank90"]) <= 2  # the planted rank-2 update
    assert float(rows["dec"]["rel_change"]) == 0
    assert "most changed: enc" in text_of(dash_duo, f"#{ids.DIV_FINETUNE_SUMMARY}")
    dash_duo.driver.execute_script(
        "document.getElementById(arguments[0]).scrollIntoView();", ids.DIV_FINETUNE_PANEL
    )
    screenshot(dash_duo, tmp_path, "compare-finetune-table.png")

    # a click on the row of "big" compares that layer above
    def click_big() -> bool:
        try:
            cells = dash_duo.find_elements(
                f"#{ids.TABLE_FINETUNE_LAYERS} td[data-dash-column='name']"
            )
            next(c for c in cells if c.text == "big").click()
            return True
        except (StaleElementReferenceException, StopIteration):
            return False

    until(click_big, timeout=20)
    dash_duo.wait_for_contains_text(f"#{ids.DIV_COMPARE_HINT}", "B: tuned › big", timeout=30)
    assert "matrix 300×200" in text_of(dash_duo, f"#{ids.DIV_COMPARE_HINT}")

    # the adapter as B: merged into A, only "dec" moved, by a rank-3 update
    dash_duo.driver.get(f"{dash_duo.server_url}/?model=base&layer=dec&tab=compare&compare=adapter")
    until(lambda: _rows(dash_duo).get("dec", {}).get("delta_rank90", "") != "", timeout=60)
    rows = _rows(dash_duo)
    assert int(rows["dec"]["delta_rank90"]) <= 3 and float(rows["enc"]["rel_change"]) == 0
    assert "adapter merged into A" in text_of(dash_duo, f"#{ids.DIV_FINETUNE_SUMMARY}")
    settle(dash_duo)
    assert dash_duo.get_logs() == []


def test_the_overview_with_a_base_model(dash_duo, tmp_path, monkeypatch):
    monkeypatch.setattr(finetune_service, "INLINE_MAX_ELEMENTS", 10_000)  # "big" by the job
    base, tuned, _ = _checkpoints(tmp_path)
    app = create_app(AppConfig(models=[str(base), str(tuned)], upload_dir=tmp_path / "up"))
    dash_duo.driver.set_window_size(1500, 1200)
    dash_duo.start_server(app)
    dash_duo.driver.get(f"{dash_duo.server_url}/?model=tuned&tab=overview")
    wait_layer_names(dash_duo, at_least=3)
    until(lambda: len(_overview_cells(dash_duo)) == 3, timeout=30)
    assert "rel_change" not in _overview_cells(dash_duo)["enc"]  # no base: no such column
    dash_duo.select_dcc_dropdown(f"#{ids.DROPDOWN_OVERVIEW_BASE}", index=0)
    until(lambda: _overview_cells(dash_duo).get("big", {}).get("rel_change", "") != "", 60)
    rows = _overview_cells(dash_duo)
    net_a, net_b = sc.load_model(base), sc.load_model(tuned)
    for name in ("enc", "big", "dec"):
        d = sc.layer_delta(net_a.matrix(name), net_b.matrix(name), k=8)
        assert float(rows[name]["rel_change"]) == pytest.approx(d.rel_change, rel=1e-3, abs=1e-9)
        assert int(rows[name]["delta_rank90"]) == d.delta_rank90
    assert rows["enc"]["alpha"] != ""  # the spectral columns stay
    screenshot(dash_duo, tmp_path, "overview-with-base.png")
    settle(dash_duo)
    assert dash_duo.get_logs() == []
