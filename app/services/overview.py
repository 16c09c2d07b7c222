"""Model overview for the page: the per-layer spectral table of a whole model.

`OverviewService` is built once by `app.services.Services` with what it needs.
One cached result per model
content key (`Network.content_key`): svdcore's `spectral_table` (norms, ranks, condition number and
the heavy-tailed ESD exponent alpha with its KS distance) and each layer's singular values
normalised by sigma_1 (for the sparklines), both from one `layer_spectra` pass.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

import svdcore as sc
from app.services.caches import ResultCaches
from app.services.registry import ModelRegistry, OpenedModel
from svdcore.esd import layer_spectra, spectral_table

__all__ = ["OverviewData", "OverviewService", "table_records"]


@dataclass(frozen=True)
class OverviewData:
    table: pd.DataFrame  # svdcore.esd.TABLE_COLUMNS, one row per layer in layer order
    spectra: dict[str, np.ndarray]  # layer -> sigma_i / sigma_1 (float32), computed layers only


class OverviewService:
    """The overview analyses of the page."""

    def __init__(self, registry: ModelRegistry, caches: ResultCaches) -> None:
        self.registry = registry
        self.caches = caches

    def key(self, model_id: str, session: str | None) -> str:
        """The cache key of a model's overview (its content key)."""
        return self._key(self.registry.open(model_id, session))

    @staticmethod
    def _key(model: OpenedModel) -> str:
        return sc.cache.make_key("overview", model.net.content_key())

    def data(self, model_id: str, session: str | None) -> OverviewData:
        """The spectral table and normalised spectra of every layer (cached per content)."""
        model = self.registry.open(model_id, session)
        net, key = model.net, self._key(model)

        def compute() -> OverviewData:
            rows = layer_spectra(net)
            spectra = {}
            for r in rows:
                if r.summary is not None and len(r.summary.singular_values):
                    s = np.asarray(r.summary.singular_values, dtype=np.float64)
                    top = s[0] if s[0] > 0 else 1.0
                    spectra[r.name] = (s / top).astype(np.float32)
            return OverviewData(spectral_table(rows), spectra)

        return self.caches.cache.get_or_compute(key, compute)

    def csv(self, model_id: str, session: str | None) -> dict[str, str]:
        """The table as a CSV download: {"content", "filename", "type"} for dcc.Download."""
        data = self.data(model_id, session)
        stem = self.registry.open(model_id, session).entry.label.split(" — ")[0]
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "model"
        return {
            "content": data.table.to_csv(index=False),
            "filename": f"{stem}-spectral-table.csv",
            "type": "text/csv",
        }


def table_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The table as DataTable rows: an "id" per row (the layer name), NaN / <NA> as None."""
    records = []
    for row in table.to_dict("records"):
        clean = {}
        for k, v in row.items():
            if v is pd.NA or v is None or (isinstance(v, float) and math.isnan(v)):
                clean[k] = None
            elif isinstance(v, np.integer | int) and not isinstance(v, bool):
                clean[k] = int(v)
            elif isinstance(v, np.floating | float):
                clean[k] = float(v)
            else:
                clean[k] = v
        clean["id"] = row["name"]
        records.append(clean)
    return records
