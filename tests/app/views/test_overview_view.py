"""Model overview without a browser: the service gives svdcore's spectral table (cached per
model content), the CSV download has a header and one line per row, the table rows are JSON
clean, and the sparkline figure has one trace per computed layer."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

import svdcore as sc
from app.config import AppConfig
from app.figures import sparklines_figure
from app.services import Services
from app.services import overview as overview_service
from app.services.overview import INLINE_MAX_ELEMENTS, PENDING_NOTE, table_records
from app.views.overview import summary_text
from svdcore.esd import TABLE_COLUMNS, spectral_table


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("overview")
    return Services(AppConfig(models=["digits", "digits-5layer"], upload_dir=tmp / "up"))


def test_overview_numbers_equal_spectral_table(services):
    data = services.overview.data("digits-5layer", None)
    expected = spectral_table(sc.zoo.load("digits-5layer"), randomize=True)
    assert list(data.table.columns) == list(TABLE_COLUMNS)
    pd.testing.assert_frame_equal(data.table, expected)
    assert list(data.table["name"]) == ["fc1", "fc2", "fc3", "fc4", "fc5"]
    assert data.table["alpha"].notna().all()


def test_overview_is_cached_per_model(services, monkeypatch):
    first = services.overview.data("digits-5layer", None)
    calls = []
    real = overview_service.layer_spectrum
    monkeypatch.setattr(
        overview_service,
        "layer_spectrum",
        lambda net, name, **kw: calls.append(name) or real(net, name, **kw),
    )
    again = services.overview.data("digits-5layer", None)  # from the cache: no new computation
    assert calls == []
    pd.testing.assert_frame_equal(again.table, first.table)
    services.overview.data("digits", None)  # another model: its own layer computed
    assert calls == ["fc1"]


def _checkpoint(path, seed: int = 0) -> None:
    """A checkpoint with one layer above INLINE_MAX_ELEMENTS and two small ones."""
    g = torch.Generator().manual_seed(seed)
    big = torch.randn(1100, 1000, generator=g) / 30
    tensors = {
        "embed.weight": torch.randn(300, 64, generator=g),
        "big.weight": big,
        "head.weight": torch.randn(10, 1100, generator=g),
    }
    assert big.numel() > INLINE_MAX_ELEMENTS
    save_file(tensors, str(path))


def test_large_layers_are_pending_then_computed_by_the_job_and_cached_by_content(tmp_path):
    """The page's first answer leaves the big layer pending (no layer skipped: the job
    computes it, reporting layers and entries, time left); then the row is found, also for
    the same file under another name (rows are keyed by tensor content)."""
    a, b = tmp_path / "a.safetensors", tmp_path / "copy.safetensors"
    _checkpoint(a)
    _checkpoint(b)
    svc = Services(AppConfig(models=[str(a), str(b)], upload_dir=tmp_path / "up"))
    ids_ = [entry.id for entry in svc.registry.models(None)]
    first = svc.overview.data(ids_[0], None)
    assert first.pending == ("big",) and first.elements == 1100 * 1000
    notes = dict(zip(first.table["name"], first.table["note"], strict=True))
    assert notes["big"] == PENDING_NOTE and notes["head"] == ""
    alphas = dict(zip(first.table["name"], first.table["alpha"], strict=True))
    assert "big" not in first.spectra and math.isnan(alphas["big"]) and alphas["embed"] > 1
    reports = []
    assert svc.overview.compute(ids_[0], None, progress=lambda *a: reports.append(a)) is False
    done, total, layer, layers, of, elapsed, left = reports[-1]
    assert (done, total, layer, layers, of) == (1100 * 1000, 1100 * 1000, "big", 1, 1)
    assert elapsed >= 0 and left == 0
    full = svc.overview.data(ids_[0], None)
    assert full.complete and full.table["alpha"].notna().all()
    W = torch.from_numpy(np.asarray(full.spectra["big"]))
    want = np.linalg.svd(sc.load_model(a).matrix("big").double().numpy(), compute_uv=False)
    np.testing.assert_allclose(W.numpy(), want / want[0], rtol=1e-5)
    net = svc.registry.network(ids_[0], None)  # the Spectrum tab finds the summary too
    summary = svc.layers._summary(net, "big", "default", compute=False)
    np.testing.assert_allclose(summary.singular_values / summary.singular_values[0], W.numpy())
    copy = svc.overview.data(ids_[1], None)  # another name, the same tensors
    assert copy.complete
    pd.testing.assert_frame_equal(copy.table, full.table)


def test_a_cancelled_overview_job_keeps_the_rows_done(tmp_path):
    path = tmp_path / "m.safetensors"
    _checkpoint(path)
    svc = Services(AppConfig(models=[str(path)], upload_dir=tmp_path / "up"))
    model = svc.registry.models(None)[0].id
    assert svc.overview.compute(model, None, should_stop=lambda: True) is True
    assert svc.overview.data(model, None).pending == ("big",)
    assert svc.overview.compute(model, None) is False
    assert svc.overview.data(model, None).complete


def test_spectra_are_normalised_singular_values(services):
    data = services.overview.data("digits-5layer", None)
    W = sc.zoo.load("digits-5layer").matrix("fc3")
    s = sc.spectrum_summary(W).singular_values
    np.testing.assert_allclose(data.spectra["fc3"], s / s[0], rtol=1e-5)
    assert list(data.spectra) == ["fc1", "fc2", "fc3", "fc4", "fc5"]


def test_csv_download_has_header_and_one_line_per_row(services):
    payload = services.overview.csv("digits-5layer", None)
    assert payload["filename"] == "digits-5layer-spectral-table.csv"
    lines = payload["content"].strip().splitlines()
    assert lines[0].split(",") == list(TABLE_COLUMNS)
    table = services.overview.data("digits-5layer", None).table
    assert len(lines) == 1 + len(table)
    back = pd.read_csv(io.StringIO(payload["content"]))
    np.testing.assert_allclose(back["alpha"], table["alpha"], rtol=1e-12)


def test_table_records_are_json_clean():
    table = spectral_table(sc.zoo.load("digits-5layer"))
    table.loc[1, ["alpha", "D"]] = math.nan
    table["n_tail"] = table["n_tail"].astype("Int64")
    table.loc[1, "n_tail"] = pd.NA
    records = table_records(table)
    assert [r["id"] for r in records] == list(table["name"])
    assert records[1]["alpha"] is None and records[1]["n_tail"] is None
    assert isinstance(records[0]["n_tail"], int) and isinstance(records[0]["alpha"], float)
    assert summary_text(records).startswith("5 layers, 4 with an ESD power-law fit")
    assert summary_text(records, 2).endswith("; 2 still computing in the background.")


def test_sparklines_one_trace_per_fitted_layer(services):
    data = services.overview.data("digits-5layer", None)
    alphas = dict(zip(data.table["name"], data.table["alpha"], strict=True))
    fig = sparklines_figure(data.spectra, alphas, title="t")
    assert len(fig.data) == len(data.spectra) == 5
    assert [t.name for t in fig.data] == ["fc1", "fc2", "fc3", "fc4", "fc5"]
    assert fig.layout.yaxis.type == "log"
    assert any("α=" in a.text for a in fig.layout.annotations)
    assert len(sparklines_figure({}).data) == 0


def test_rows_with_the_change_from_a_base():
    from app.views.overview import BASE_COLUMNS, columns_for, with_changes

    records = [
        {"name": "a", "note": ""},
        {"name": "b", "note": "fp8 raw"},
        {"name": "c", "note": None},
    ]
    changes = [
        {"name": "a", "rel_change": 0.5, "delta_rank90": 2, "left_overlap": 1.0, "note": ""},
        {"name": "b", "note": "shape changed: (2, 3) -> (3, 3)"},
    ]
    rows = {r["name"]: r for r in with_changes(records, changes)}
    assert rows["a"]["rel_change"] == 0.5 and rows["a"]["note"] == ""
    assert (
        rows["b"]["rel_change"] is None
        and rows["b"]["note"] == "fp8 raw; base: shape changed: (2, 3) -> (3, 3)"
    )
    assert rows["c"]["rel_change"] is None and rows["c"]["note"] is None  # not in the base table
    ids_plain = [c["id"] for c in columns_for(None)]
    ids_base = [c["id"] for c in columns_for("base")]
    assert [c for c in ids_base if c not in ids_plain] == [c for c, _, _ in BASE_COLUMNS]
    assert ids_base.index("rel_change") == ids_base.index("dtype") + 1
