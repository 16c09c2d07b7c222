"""The per-layer views of one matrix: the layer table, weights, spectrum, singular vectors.

Results are cached by the content key of the matrix (`ModelRegistry.layer_key`) in the
shared result caches (app/services/caches.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import svdcore as sc
from app.formatting import fmt_compact
from app.services.caches import ResultCaches
from app.services.registry import ModelRegistry
from svdcore.spectrum import energy_rank

__all__ = [
    "FULL_SVD_MAX_SIDE",
    "SPECTRUM_FULL_MAX_SIDE",
    "SPECTRUM_TOP_K",
    "TABLE_SUMMARY_MAX_ELEMENTS",
    "TABLE_SUMMARY_MAX_LAYERS",
    "TRUNCATED_K",
    "LayerViews",
    "SpectrumData",
    "VectorsData",
    "WeightsData",
]

FULL_SVD_MAX_SIDE = 2048  # above this min(m, n) the vector gallery uses a truncated SVD
# above this min(m, n) the Spectrum tab first shows the top SPECTRUM_TOP_K singular values
# (randomized, about 0.4 s at 4096^2 here) and computes the full spectrum in a background
# job (a full SVD of 1024^2 takes about 0.7 s on this 2-core machine, 4096^2 about 28 s)
SPECTRUM_FULL_MAX_SIDE = 1024
SPECTRUM_TOP_K = 64
TRUNCATED_K = 64
# The layer table computes the numbers of layers up to this size when a model opens; larger
# ones show them once their Spectrum tab has been computed (read from the cache).
TABLE_SUMMARY_MAX_ELEMENTS = 1024 * 1024
# ... and of at most this many layers (a model of 10^4 small tensors lists at once; the
# numbers of the others appear once their Spectrum tab has been opened)
TABLE_SUMMARY_MAX_LAYERS = 256


@dataclass(frozen=True)
class WeightsData:
    matrix: np.ndarray  # float32 (m, n)
    info: Any  # sc.ViewInfo
    key: str = ""  # content key of the matrix (for caching what is drawn from it)


@dataclass(frozen=True)
class SpectrumData:
    summary: Any  # sc.SpectrumSummary, or None while only `top` is known (a large layer)
    info: Any
    shape: tuple[int, int]
    rank_for_energy: dict[float, int]  # energy fraction -> smallest k reaching it
    top: Any = None  # sc.TopSpectrum: the first, randomized view of a large layer
    full_key: str = ""  # cache key of the full spectrum (what the background job computes)

    @property
    def preliminary(self) -> bool:
        """True while only the top singular values of a large layer are known."""
        return self.summary is None


@dataclass(frozen=True)
class VectorsData:
    left: np.ndarray  # (k, m) float32: u_1 .. u_k as rows
    sigma: np.ndarray  # (k,)
    right: np.ndarray  # (k, n) float32: v_1 .. v_k as rows
    info: Any
    truncated: bool
    key: str = ""  # content key of the matrix (for caching what is drawn from it)


def _table_row(row: sc.LayerRow) -> dict[str, Any]:
    """The Layers table's cells for one `sc.LayerRow`."""
    info = row.info
    cells: dict[str, Any] = {
        "id": info.name,
        "name": info.name,
        "kind": info.kind,
        "shape": "×".join(str(d) for d in info.shape) or "scalar",
        "matrix": "—",
        "cond": "",
        "erank": "",
        "viewable": info.matrix_shape is not None,
        "note": info.note or "",
    }
    if info.matrix_shape is None:
        return cells
    cells["matrix"] = "×".join(map(str, info.matrix_shape))
    if row.error is not None:
        cells["note"] = row.error
    elif row.summary is None:
        cells["note"] = "κ and effective rank appear once the Spectrum tab is opened."
    else:
        cells["cond"] = fmt_compact(row.summary.condition_number)
        cells["erank"] = f"{row.summary.effective_rank:.1f}"
    return cells


class LayerViews:
    """The layer table and the Weights / Spectrum / Singular-vector views of a layer."""

    def __init__(self, registry: ModelRegistry, caches: ResultCaches) -> None:
        self.registry = registry
        self.caches = caches

    def table(self, model_id: str, session: str | None) -> list[dict[str, Any]]:
        """One row per tensor (`sc.layer_rows`): name, kind, shape, matrix shape (or the
        reason), condition number and effective rank where they are computed or cached."""
        net = self.registry.open(model_id, session).net
        rows = sc.layer_rows(
            net,
            summary=lambda info, compute: self._summary(net, info.name, "default", compute=compute),
            max_elements=TABLE_SUMMARY_MAX_ELEMENTS,
            max_layers=TABLE_SUMMARY_MAX_LAYERS,
        )
        return [_table_row(row) for row in rows]

    def _summary(self, net: Any, layer: str, view: str, *, compute: bool = True) -> Any:
        """Cached sc.spectrum_summary; with compute=False, None unless already cached (here
        or, for a large layer's full spectrum computed by a background job, in
        shared_cache)."""
        cache_key = sc.cache.make_key("spectrum_summary", net.matrix_key(layer, view=view))
        if not compute:
            found = self.caches.cache.backend.get(cache_key)
            if found is None and self.caches.shared_cache is not self.caches.cache:
                found = self.caches.shared_cache.backend.get(cache_key)
            return found
        return self.caches.cache.get_or_compute(
            cache_key, lambda: sc.spectrum_summary(net.matrix(layer, view=view))
        )

    def spectrum_full_key(self, model_id: str, layer: str, view: str, session: str | None) -> str:
        """The cache key of a layer's full spectrum summary."""
        key = self.registry.open(model_id, session).key(layer, view)
        return sc.cache.make_key("spectrum_summary", key)

    def spectrum_full(self, model_id: str, layer: str, view: str, session: str | None) -> Any:
        """The full spectrum summary of a (large) layer, computed once and kept in
        shared_cache, where the page finds it after the background job that calls this."""
        W, key = self.registry.open(model_id, session).matrix(layer, view)
        full_key = sc.cache.make_key("spectrum_summary", key)
        return self.caches.shared_cache.get_or_compute(full_key, lambda: sc.spectrum_summary(W))

    def weights(self, model_id: str, layer: str, view: str, session: str | None) -> WeightsData:
        model = self.registry.open(model_id, session)
        W, key = model.matrix(layer, view)
        matrix = W.detach().to("cpu").float().numpy()
        return WeightsData(np.ascontiguousarray(matrix), model.view_info(layer, view), key)

    def spectrum(self, model_id: str, layer: str, view: str, session: str | None) -> SpectrumData:
        """The layer's spectrum. A layer with min(m, n) > SPECTRUM_FULL_MAX_SIDE whose full
        spectrum is not cached yet gets its top SPECTRUM_TOP_K singular values from a
        randomized sketch (`sc.top_spectrum`, with error bounds) and `summary=None`; the
        page then runs `spectrum_full` as a background job."""
        model = self.registry.open(model_id, session)
        net, info, key = model.net, model.view_info(layer, view), model.key(layer, view)
        full_key = sc.cache.make_key("spectrum_summary", key)
        if min(info.shape) > SPECTRUM_FULL_MAX_SIDE:
            summary = self._summary(net, layer, view, compute=False)
            if summary is None:
                top = self.caches.cache.get_or_compute(
                    sc.cache.make_key("top_spectrum", key, SPECTRUM_TOP_K),
                    lambda: sc.top_spectrum(net.matrix(layer, view=view), SPECTRUM_TOP_K),
                )
                return SpectrumData(None, info, tuple(info.shape), {}, top, full_key)
        else:
            summary = self._summary(net, layer, view)
        energy = np.asarray(summary.cumulative_energy)
        reach = {f: energy_rank(energy, f) for f in (0.9, 0.99) if len(energy)}
        return SpectrumData(summary, info, tuple(info.shape), reach, None, full_key)

    def vectors(
        self, model_id: str, layer: str, view: str, k: int, session: str | None
    ) -> VectorsData:
        model = self.registry.open(model_id, session)
        net, info, key = model.net, model.view_info(layer, view), model.key(layer, view)
        truncated = min(info.shape) > FULL_SVD_MAX_SIDE
        rank_k = TRUNCATED_K if truncated else None

        def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            res = sc.svd(net.matrix(layer, view=view), k=rank_k)
            return tuple(
                np.ascontiguousarray(t.detach().to("cpu").float().numpy())
                for t in (res.U, res.S, res.Vh)
            )

        U, S, Vh = self.caches.cache.get_or_compute(sc.cache.make_key("svd", key, rank_k), compute)
        k = max(1, min(int(k), len(S)))
        return VectorsData(
            np.ascontiguousarray(U[:, :k].T),
            S[:k],
            Vh[:k],
            info,
            truncated,
            key,
        )
