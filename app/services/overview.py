"""Model overview for the page: the per-layer spectral table of a whole model.

`OverviewService` is built once by `app.services.Services` with what it needs.
Every layer is computed, whatever its size (svdcore's `layer_spectrum`: norms, ranks,
condition number, the heavy-tailed ESD exponent alpha with its KS distance and Hill's
estimate, the Marchenko-Pastur bulk and its spikes, the shuffled copy's distance and traps,
near-ties; float64 singular values, the Gram route for large layers), and each row is
cached by the content of its tensor in the shared cache (`Network.matrix_key`): reopening a
model, the same file under another name, in another session or on another worker, finds its
rows at once.
Layers up to `INLINE_MAX_ELEMENTS` entries are computed while the page waits; the others
by a background job (`compute`, reported layer by layer) while the page shows the rows
already known and says which are still running.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import svdcore as sc
from app.services.caches import ResultCaches
from app.services.jobs import rows_by_entries
from app.services.registry import ModelRegistry, OpenedModel
from svdcore.esd import LayerSpectrum, layer_spectrum, spectral_table

__all__ = [
    "INLINE_MAX_ELEMENTS",
    "PENDING_NOTE",
    "OverviewData",
    "OverviewService",
    "table_records",
]

# Layers of at most this many entries are summarised in the request (1024 x 1024: about
# 0.1 s here); larger ones by the overview job.
INLINE_MAX_ELEMENTS = 1024 * 1024
PENDING_NOTE = "computing in the background…"
_ROW_VERSION = 3  # bump when a row's content changes: older cached rows are never read


@dataclass(frozen=True)
class OverviewData:
    table: pd.DataFrame  # svdcore.esd.TABLE_COLUMNS, one row per layer in layer order
    spectra: dict[str, np.ndarray]  # layer -> sigma_i / sigma_1 (float32), computed layers only
    pending: tuple[str, ...] = field(default=())  # layers whose rows the job still computes
    elements: int = 0  # entries of the pending matrices (the job's size)

    @property
    def complete(self) -> bool:
        return not self.pending


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
        return sc.cache.make_key("overview", _ROW_VERSION, model.net.content_key())

    @staticmethod
    def _row_key(net: Any, name: str) -> str:
        return sc.cache.make_key("overview-row", _ROW_VERSION, net.matrix_key(name))

    def _row(self, net: Any, info: Any, *, compute: bool) -> LayerSpectrum | None:
        """One layer's row: from the shared cache, else computed when `compute` (None
        otherwise). Layers with no matrix view cost nothing and are never cached."""
        if info.matrix_shape is None:
            return layer_spectrum(net, info.name, randomize=True)
        key = self._row_key(net, info.name)
        if not compute:
            return self.caches.shared_cache.backend.get(key)

        def run() -> LayerSpectrum:
            row = layer_spectrum(net, info.name, randomize=True)
            if row.summary is not None:  # the Spectrum tab and the Layers table read it too
                full = sc.cache.make_key("spectrum_summary", net.matrix_key(info.name))
                shared = self.caches.shared_cache
                shared.backend.set(full, row.summary, timeout=shared.timeout)
            return row

        return self.caches.shared_cache.get_or_compute(key, run)

    def data(
        self,
        model_id: str,
        session: str | None,
        *,
        inline_max_elements: int | None = INLINE_MAX_ELEMENTS,
    ) -> OverviewData:
        """The spectral table and normalised spectra of every layer: rows cached or small
        enough (`inline_max_elements`; None: every layer) are filled in, the others are
        `pending` (the job computes them). A complete overview is kept as one result."""
        model = self.registry.open(model_id, session)
        net, key = model.net, self._key(model)
        found = self.caches.cache.backend.get(key)
        if found is not None:
            return found
        rows, pending, elements = [], [], 0
        for info in net.layers:
            size = math.prod(info.matrix_shape) if info.matrix_shape else 0
            small = inline_max_elements is None or size <= inline_max_elements
            row = self._row(net, info, compute=small)
            if row is None:
                pending.append(info.name)
                elements += size
                row = LayerSpectrum(
                    info.name,
                    info.kind,
                    tuple(info.shape),
                    info.matrix_shape,
                    None,
                    None,
                    PENDING_NOTE,
                    info.dtype,
                )
            rows.append(row)
        data = OverviewData(spectral_table(rows), _spectra(rows), tuple(pending), elements)
        if data.complete:
            self.caches.cache.backend.set(key, data, timeout=self.caches.cache.timeout)
        return data

    def compute(
        self,
        model_id: str,
        session: str | None,
        *,
        progress: Callable[..., None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> bool:
        """The overview job: compute every row not cached yet, one layer at a time (each
        kept in the shared cache as soon as it is done, where the page finds it), reporting
        ``progress(done, total, layer, layers_done, layers_total, elapsed_s, left_s)``, done and
        total in matrix entries (the cost grows with them). True when
        ``should_stop()`` stopped it (the rows done so far are kept)."""
        model = self.registry.open(model_id, session)
        net = model.net
        todo = [
            (info.name, math.prod(info.matrix_shape))
            for info in net.layers
            if info.matrix_shape is not None and self._row(net, info, compute=False) is None
        ]
        return rows_by_entries(
            todo,
            lambda name: self._row(net, net.layer(name), compute=True),
            progress=progress,
            should_stop=should_stop,
        )

    def csv(self, model_id: str, session: str | None) -> dict[str, str]:
        """The table as a CSV download: {"content", "filename", "type"} for dcc.Download
        (the rows known now; pending ones say so in their note)."""
        data = self.data(model_id, session)
        stem = self.registry.file_stem(model_id, session)
        return {
            "content": data.table.to_csv(index=False),
            "filename": f"{stem}-spectral-table.csv",
            "type": "text/csv",
        }


def _spectra(rows: list[LayerSpectrum]) -> dict[str, np.ndarray]:
    """sigma_i / sigma_1 (float32) of every row with a spectrum, for the sparklines."""
    spectra = {}
    for r in rows:
        if r.summary is not None and len(r.summary.singular_values):
            s = np.asarray(r.summary.singular_values, dtype=np.float64)
            top = s[0] if s[0] > 0 else 1.0
            spectra[r.name] = (s / top).astype(np.float32)
    return spectra


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
