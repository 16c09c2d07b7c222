"""Model overview without a browser: the service gives svdcore's spectral table (cached per
model content), the CSV download has a header and one line per row, the table rows are JSON
clean, and the sparkline figure has one trace per computed layer."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

import svdcore as sc
from app.config import AppConfig
from app.figures import sparklines_figure
from app.services import Services
from app.services.overview import table_records
from app.views.overview import summary_text
from svdcore.esd import TABLE_COLUMNS, spectral_table


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("overview")
    return Services(AppConfig(models=["digits", "digits-5layer"], upload_dir=tmp / "up"))


def test_overview_numbers_equal_spectral_table(services):
    data = services.overview.data("digits-5layer", None)
    expected = spectral_table(sc.zoo.load("digits-5layer"))
    assert list(data.table.columns) == list(TABLE_COLUMNS)
    pd.testing.assert_frame_equal(data.table, expected)
    assert list(data.table["name"]) == ["fc1", "fc2", "fc3", "fc4", "fc5"]
    assert data.table["alpha"].notna().all()


def test_overview_is_cached_per_model(services, monkeypatch):
    first = services.overview.data("digits-5layer", None)
    calls = []
    monkeypatch.setattr("app.services.overview.layer_spectra", lambda net: calls.append(net) or [])
    again = services.overview.data("digits-5layer", None)  # from the cache: no new computation
    assert calls == []
    pd.testing.assert_frame_equal(again.table, first.table)
    services.overview.data("digits", None)  # another model: another content key
    assert len(calls) == 1


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


def test_sparklines_one_trace_per_fitted_layer(services):
    data = services.overview.data("digits-5layer", None)
    alphas = dict(zip(data.table["name"], data.table["alpha"], strict=True))
    fig = sparklines_figure(data.spectra, alphas, title="t")
    assert len(fig.data) == len(data.spectra) == 5
    assert [t.name for t in fig.data] == ["fc1", "fc2", "fc3", "fc4", "fc5"]
    assert fig.layout.yaxis.type == "log"
    assert any("α=" in a.text for a in fig.layout.annotations)
    assert len(sparklines_figure({}).data) == 0
