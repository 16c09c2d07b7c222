"""Spectrum of a large layer without a browser: the first view is the randomized top of the
spectrum with bounds, the full spectrum is computed once (the background job's call) into
the cache the page reads, and the job's clock reports, stops and re-raises."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import app.services.layers as services_module
from app.config import AppConfig
from app.figures.spectrum import top_spectrum_figure
from app.services import Services
from app.views import spectrum as spectrum_view


@pytest.fixture
def services(tmp_path, monkeypatch):
    torch.manual_seed(0)
    path = tmp_path / "big.safetensors"
    W = torch.randn(300, 260) * torch.linspace(3.0, 0.1, 260)
    save_file({"proj.weight": W.contiguous(), "head.weight": torch.randn(10, 300)}, str(path))
    monkeypatch.setattr(services_module, "SPECTRUM_FULL_MAX_SIDE", 100)
    monkeypatch.setattr(services_module, "SPECTRUM_TOP_K", 16)
    return Services(AppConfig(models=[str(path)], upload_dir=tmp_path / "up"))


def test_first_view_of_a_large_layer_is_the_bracketed_top(services):
    data = services.layers.spectrum("big", "proj", "default", None)
    assert data.preliminary and data.summary is None and data.rank_for_energy == {}
    W = services.registry.network("big", None).matrix("proj").double().numpy()
    truth = np.linalg.svd(W, compute_uv=False)[:16]
    top = data.top
    assert top.singular_values.shape == (16,)
    assert np.all(top.singular_values <= truth * (1 + 1e-6))
    assert np.all(truth <= top.upper * (1 + 1e-5))
    small = services.layers.spectrum("big", "head", "default", None)  # 10 x 300: full at once
    assert not small.preliminary and small.top is None


def test_full_spectrum_lands_where_the_page_reads_it(services):
    first = services.layers.spectrum("big", "proj", "default", None)
    full = services.layers.spectrum_full("big", "proj", "default", None)  # what the job runs
    assert services.shared_cache.backend.get(first.full_key) is not None
    again = services.layers.spectrum("big", "proj", "default", None)
    assert not again.preliminary
    np.testing.assert_allclose(again.summary.singular_values, full.singular_values)
    assert again.full_key == first.full_key
    row = next(r for r in services.layers.table("big", None) if r["name"] == "proj")
    assert row["cond"] != ""  # the layer table shows the numbers now too


def test_stats_panels_word_the_bounds(services):
    data = services.layers.spectrum("big", "proj", "default", None)
    boxes = {box.children[1].id: box for box in spectrum_view.top_stats_panel(data)}
    energy = boxes["text-spectrum-energy"].children[1].children
    assert energy.startswith("≥ ") and energy.endswith("%")
    assert boxes["text-spectrum-cond"].children[1].children == "…"
    services.layers.spectrum_full("big", "proj", "default", None)
    full = services.layers.spectrum("big", "proj", "default", None)
    ids_ = [box.children[1].id for box in spectrum_view.stats_panel(full)]
    assert "text-spectrum-cond" in ids_ and "text-spectrum-erank" in ids_


def test_preliminary_view_starts_the_job_once(services):
    data = services.layers.spectrum("big", "proj", "default", None)
    out = spectrum_view._preliminary(data, "proj", None, None)
    figure, _, _, style, note, status, run = out
    assert style["display"] == "flex" and "randomized sketch" in note and status is None
    assert run["key"] == data.full_key and run["nonce"]
    # the job for this layer already started: no second start
    assert spectrum_view._preliminary(data, "proj", None, run)[-1] is spectrum_view.no_update
    # a cancelled job is not restarted by itself; the page says so
    done = {"key": data.full_key, "status": "cancelled", "nonce": "x"}
    *_, status, run = spectrum_view._preliminary(data, "proj", done, None)
    assert run is spectrum_view.no_update and "cancelled" in str(status)
    assert [t["name"] for t in figure["data"]] == ["σᵢ", "energy"]


def test_job_clock_reports_stops_and_reraises():
    reports = []
    stopped = spectrum_view._run_with_clock(
        lambda: time.sleep(0.6), lambda s, t: reports.append((s, t)), lambda: False, (64, 64)
    )
    assert stopped is False and reports[-1] == (1, 1) and len(reports) >= 2
    stopped = spectrum_view._run_with_clock(
        lambda: time.sleep(5), lambda s, t: None, lambda: True, (64, 64)
    )
    assert stopped is True

    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        spectrum_view._run_with_clock(fail, lambda s, t: None, lambda: False, (64, 64))


def test_top_spectrum_figure_error_bars_and_energy():
    s = np.array([4.0, 2.0, 1.0])
    fig = top_spectrum_figure(s, s * 1.1, np.array([1e-6, 2e-6, 3e-6]), 5.0, rank=10)
    values, energy = fig.data
    np.testing.assert_allclose(values.error_y.array, [1e-6, 2e-6, 3e-6], rtol=1e-6)
    np.testing.assert_allclose(energy.y, np.cumsum(s**2) / 25.0, rtol=1e-6)
    assert "Top 3 of 10" in fig.layout.annotations[0].text
