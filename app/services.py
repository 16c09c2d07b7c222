"""The only bridge between the page and svdcore.

Resolves model ids to opened `sc.Network`s (zoo and configured files per process, uploads
per browser session), runs the analyses through a content-keyed `sc.cache.ResultCache`,
and hands numpy arrays and summaries to the views. Errors that svdcore raises on purpose
(`sc.SvdscopeError`) carry a sentence meant for the user: `error_message` returns it.
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cachelib import BaseCache, FileSystemCache, SimpleCache

import svdcore as sc
from app.compare_service import CompareServices
from app.config import AppConfig
from app.dataset_service import DatasetEntry, DatasetServices, OpenedDataset
from app.deploy import REDIS_RESULT_TTL_S, connect_redis, redis_result_backend
from app.descramble_service import DescrambleData, DescrambleOptions, DescrambleServices
from app.inversion_service import InversionData, InversionOptions, InversionServices
from app.overview_service import OverviewData, OverviewServices
from app.subspaces_service import (
    ProjectionData,
    SubspacesData,
    SubspacesOptions,
    SubspacesServices,
)
from app.surgery_service import SurgeryServices
from app.uploads import DATASET_SUFFIXES, UploadStore, format_duration
from app.vector_fits_service import VectorFitOptions, VectorFitsData, VectorFitServices

__all__ = [
    "DatasetEntry",
    "DescrambleData",
    "DescrambleOptions",
    "InversionData",
    "InversionOptions",
    "ModelEntry",
    "OpenedDataset",
    "OverviewData",
    "ProjectionData",
    "Services",
    "SpectrumData",
    "SubspacesData",
    "SubspacesOptions",
    "VectorFitOptions",
    "VectorFitsData",
    "VectorsData",
    "WeightsData",
]

log = logging.getLogger(__name__)

UPLOAD_PREFIX = "upload-"
MAX_OPEN_UPLOADS = 8
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
class ModelEntry:
    id: str
    label: str
    kind: str  # "zoo" | "file" | "upload"
    description: str = ""
    path: Path | None = None


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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "model"


class Services(
    DescrambleServices,
    DatasetServices,
    SubspacesServices,
    InversionServices,
    SurgeryServices,
    OverviewServices,
    VectorFitServices,
    CompareServices,
):
    """Per-process registry of networks plus cached analyses; safe to call from threads.

    `cache` keeps results in this process (memory) or on disk (`config.cache_dir`);
    `shared_cache` is the one that background-job processes see too (the same disk cache,
    or a private temporary folder when `cache` is in memory); `jobs_dir` is where the
    background-job manager keeps its queue. With `config.redis_url` reachable, `cache` and
    `shared_cache` are one RedisCache (`redis_url` is then set; else None). Descramble,
    dataset, subspace and inversion methods: see the mixins (app/*_service.py).
    """

    def __init__(self, config: AppConfig | None = None) -> None:
        self.config = config or AppConfig()
        self.uploads = UploadStore(
            self.config.upload_dir,
            max_bytes=self.config.max_upload_bytes,
            max_files=self.config.max_uploads_per_session,
            ttl_s=self.config.upload_ttl_s,
        )
        self.dataset_uploads = UploadStore(
            self.config.upload_dir / "datasets",
            max_bytes=self.config.max_upload_bytes,
            max_files=self.config.max_uploads_per_session,
            suffixes=DATASET_SUFFIXES,
            what="dataset",
            too_big_hint="upload a smaller sample of it",
            ttl_s=self.config.upload_ttl_s,
        )
        for store in (self.uploads, self.dataset_uploads):  # what expired while stopped
            try:
                store.sweep()
            except OSError as err:  # an unreadable upload folder must not stop the page
                log.warning("svdscope: could not sweep expired uploads in %s (%s)", store.root, err)
        self._dataset_memo = OrderedDict()
        self._dataset_lock = threading.Lock()
        backend: BaseCache
        if self.config.cache_dir is None:
            backend = SimpleCache(threshold=self.config.cache_threshold)
        else:
            backend = FileSystemCache(
                str(self.config.cache_dir), threshold=self.config.cache_threshold
            )
        self.cache = sc.cache.ResultCache(backend)
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        if self.config.cache_dir is None:
            self._scratch = tempfile.TemporaryDirectory(
                prefix="svdscope-", ignore_cleanup_errors=True
            )
            scratch = Path(self._scratch.name)
            self.shared_cache = sc.cache.ResultCache(
                FileSystemCache(str(scratch / "results"), threshold=self.config.cache_threshold)
            )
            self.jobs_dir = scratch / "jobs"
        else:
            self.shared_cache = self.cache
            self.jobs_dir = self.config.cache_dir / "jobs"
        # A lab deployment: results and cancel flags in Redis, seen by every gunicorn and
        # Celery worker; None when not configured or unreachable (app/deploy.py logs why).
        self.redis = connect_redis(self.config)
        self.redis_url = self.config.redis_url if self.redis is not None else None
        if self.redis is not None:
            self.cache = sc.cache.ResultCache(
                redis_result_backend(self.redis), timeout=REDIS_RESULT_TTL_S
            )
            self.shared_cache = self.cache
        self._data_memo = OrderedDict()
        self._data_lock = threading.Lock()
        self._lock = threading.RLock()
        self._nets: dict[str, Any] = {}
        self._open_uploads: OrderedDict[tuple[str, str], Any] = OrderedDict()
        # per opened network: (layer, view) -> content key of its matrix
        self._tensor_keys: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], str]] = (
            weakref.WeakKeyDictionary()
        )
        self._entries: dict[str, ModelEntry] = {}
        for spec in self.config.models:
            entry = self._entry_for_spec(spec)
            self._entries[entry.id] = entry

    # ----------------------------------------------------------------- models
    def _entry_for_spec(self, spec: str) -> ModelEntry:
        zoo_names = self._zoo_names()
        if spec in zoo_names and not Path(spec).exists():  # same rule as the CLI
            try:
                meta = sc.zoo.get(spec)
                title, description = meta.title, meta.description
            except Exception:
                title, description = spec, ""
            return ModelEntry(spec, f"{spec} — {title}", "zoo", description)
        path = Path(spec).expanduser()
        if not path.exists():
            known = ", ".join(zoo_names) or "none installed"
            raise sc.LoadError(
                f"'{spec}' is neither an example network (known: {known}) nor an existing file."
            )
        base = _slug(path.stem if path.is_file() else path.name)
        model_id, n = base, 2
        while model_id in self._entries or model_id in zoo_names:
            model_id, n = f"{base}-{n}", n + 1
        return ModelEntry(model_id, path.name, "file", str(path.resolve()), path.resolve())

    @staticmethod
    def _zoo_names() -> list[str]:
        try:
            return list(sc.zoo.names())
        except Exception:
            return []

    def models(self, session: str | None) -> list[ModelEntry]:
        """Configured models, then this session's uploads (oldest first)."""
        found = list(self._entries.values())
        for up in self.uploads.list(session):
            found.append(
                ModelEntry(f"{UPLOAD_PREFIX}{up.file_id}", f"⇪ {up.name}", "upload", up.name)
            )
        return found

    def model_entry(self, model_id: str, session: str | None) -> ModelEntry:
        if model_id in self._entries:
            return self._entries[model_id]
        if model_id.startswith(UPLOAD_PREFIX) and session is not None:
            up = self.uploads.get(session, model_id[len(UPLOAD_PREFIX) :])
            if up is not None:
                return ModelEntry(model_id, f"⇪ {up.name}", "upload", up.name, up.path)
        gone = self.upload_gone_message(model_id, session)
        if gone is not None:
            raise sc.LoadError(gone)
        raise sc.LoadError(
            f"The model '{model_id}' is not available in this browser session; "
            "pick one from the list or upload the file again."
        )

    def network(self, model_id: str, session: str | None) -> Any:
        """The opened `sc.Network` for `model_id` (raises sc.LoadError with a sentence)."""
        entry = self.model_entry(model_id, session)
        if entry.kind == "upload":
            assert session is not None
            return self.open_upload(session, model_id[len(UPLOAD_PREFIX) :]).net
        with self._lock:
            net = self._nets.get(model_id)
        if net is None:  # load outside the lock: other users keep being served meanwhile
            net = sc.zoo.load(model_id) if entry.kind == "zoo" else sc.load_model(entry.path)
            with self._lock:
                net = self._nets.setdefault(model_id, net)
        return net

    def open_upload(self, session: str, file_id: str) -> OpenedUpload:
        """Open (or reuse) an uploaded file of `session` with sc.load_model."""
        key = (session, file_id)
        up = self.uploads.get(session, file_id)
        if up is None:
            raise sc.LoadError(
                self.upload_gone_message(f"{UPLOAD_PREFIX}{file_id}", session)
                or "This uploaded model is no longer stored for this browser session; "
                "upload the file again."
            )
        with self._lock:
            net = self._open_uploads.get(key)
            if net is not None:
                self._open_uploads.move_to_end(key)
        if net is None:
            try:
                net = sc.load_model(up.path)
            except sc.SvdscopeError as err:  # speak of the user's file name, not the stored one
                raise type(err)(str(err).replace(up.path.name, up.name)) from err
            with self._lock:
                self._open_uploads[key] = net
                while len(self._open_uploads) > MAX_OPEN_UPLOADS:
                    self._open_uploads.popitem(last=False)
        return OpenedUpload(f"{UPLOAD_PREFIX}{file_id}", up.name, net)

    def upload_gone_message(
        self, upload_id: str, session: str | None, *, dataset: bool = False
    ) -> str | None:
        """The sentence for an upload id ("upload-<file id>") of `session` whose file has
        expired (`AppConfig.upload_ttl_s`), else None."""
        store = self.dataset_uploads if dataset else self.uploads
        if not upload_id.startswith(UPLOAD_PREFIX) or store.ttl_s is None:
            return None
        name = store.expired(session, upload_id[len(UPLOAD_PREFIX) :])
        if name is None:
            return None
        kept = format_duration(store.ttl_s)
        return (
            f"The uploaded file '{name}' has expired: uploads are deleted {kept} after they "
            "are sent. Upload it again to keep working with it."
        )

    # ----------------------------------------------------------------- layers
    def layers(self, model_id: str, session: str | None) -> list[Any]:
        return list(self.network(model_id, session).layers)

    def first_viewable_layer(self, model_id: str, session: str | None) -> str | None:
        for info in self.layers(model_id, session):
            if info.matrix_shape is not None:
                return info.name
        return None

    def layer_table(self, model_id: str, session: str | None) -> list[dict[str, Any]]:
        """One row per tensor: name, kind, shape, matrix shape (or the reason), numbers."""
        net = self.network(model_id, session)
        rows = []
        computed = 0
        for info in net.layers:
            row: dict[str, Any] = {
                "id": info.name,
                "name": info.name,
                "kind": info.kind,
                "shape": "×".join(str(d) for d in info.shape) or "scalar",
                "matrix": "",
                "cond": "",
                "erank": "",
                "viewable": info.matrix_shape is not None,
                "note": info.note or "",
            }
            if info.matrix_shape is None:
                row["matrix"] = "—"
            else:
                m, n = info.matrix_shape
                row["matrix"] = f"{m}×{n}"
                compute = m * n <= TABLE_SUMMARY_MAX_ELEMENTS
                computed += compute
                try:  # past the first TABLE_SUMMARY_MAX_LAYERS: no per-layer work at all
                    summary = (
                        self._summary(net, info.name, "default", compute=compute)
                        if computed <= TABLE_SUMMARY_MAX_LAYERS
                        else None
                    )
                except sc.SvdscopeError as err:
                    row["note"] = str(err)
                else:
                    if summary is None:
                        row["note"] = "κ and effective rank appear once the Spectrum tab is opened."
                    else:
                        row["cond"] = _fmt_number(summary.condition_number)
                        row["erank"] = f"{summary.effective_rank:.1f}"
            rows.append(row)
        return rows

    def layer_info(self, model_id: str, layer: str, session: str | None) -> Any:
        return self.network(model_id, session).layer(layer)

    # ----------------------------------------------------------------- analyses
    def _matrix_and_key(self, net: Any, layer: str, view: str) -> tuple[Any, str]:
        W = net.matrix(layer, view=view)
        try:
            memo = self._tensor_keys.setdefault(net, {})
        except TypeError:  # not weak-referenceable: hash every time
            memo = {}
        key = memo.get((layer, view))
        if key is None:
            key = memo[(layer, view)] = sc.cache.tensor_key(W)
        return W, key

    def _layer_key(self, net: Any, layer: str, view: str) -> str:
        """The content key of a layer's matrix; the matrix is read (and hashed) only the
        first time, so cached views of a large layer never touch its weights again."""
        try:
            known = self._tensor_keys.get(net, {}).get((layer, view))
        except TypeError:
            known = None
        return known or self._matrix_and_key(net, layer, view)[1]

    def layer_view(
        self, model_id: str, layer: str, view: str, session: str | None
    ) -> tuple[str, tuple[int, int], Any]:
        """(content key, matrix shape, ViewInfo) of a layer's matrix view, cheaply."""
        net = self.network(model_id, session)
        info = net.view_info(layer, view=view)
        return self._layer_key(net, layer, view), tuple(info.shape), info

    def _summary(self, net: Any, layer: str, view: str, *, compute: bool = True) -> Any:
        """Cached sc.spectrum_summary; with compute=False, None unless already cached (here
        or, for a large layer's full spectrum computed by a background job, in
        shared_cache)."""
        key = self._layer_key(net, layer, view)
        cache_key = sc.cache.make_key("spectrum_summary", key)
        if not compute:
            found = self.cache.backend.get(cache_key)
            if found is None and self.shared_cache is not self.cache:
                found = self.shared_cache.backend.get(cache_key)
            return found
        return self.cache.get_or_compute(
            cache_key, lambda: sc.spectrum_summary(net.matrix(layer, view=view))
        )

    def spectrum_full_key(self, model_id: str, layer: str, view: str, session: str | None) -> str:
        """The cache key of a layer's full spectrum summary."""
        _, key = self._matrix_and_key(self.network(model_id, session), layer, view)
        return sc.cache.make_key("spectrum_summary", key)

    def spectrum_full(self, model_id: str, layer: str, view: str, session: str | None) -> Any:
        """The full spectrum summary of a (large) layer, computed once and kept in
        shared_cache, where the page finds it after the background job that calls this."""
        net = self.network(model_id, session)
        W, _ = self._matrix_and_key(net, layer, view)
        key = self.spectrum_full_key(model_id, layer, view, session)
        return self.shared_cache.get_or_compute(key, lambda: sc.spectrum_summary(W))

    def weights(self, model_id: str, layer: str, view: str, session: str | None) -> WeightsData:
        net = self.network(model_id, session)
        W, key = self._matrix_and_key(net, layer, view)
        matrix = W.detach().to("cpu").float().numpy()
        return WeightsData(np.ascontiguousarray(matrix), net.view_info(layer, view=view), key)

    def spectrum(self, model_id: str, layer: str, view: str, session: str | None) -> SpectrumData:
        """The layer's spectrum. A layer with min(m, n) > SPECTRUM_FULL_MAX_SIDE whose full
        spectrum is not cached yet gets its top SPECTRUM_TOP_K singular values from a
        randomized sketch (`sc.top_spectrum`, with error bounds) and `summary=None`; the
        page then runs `spectrum_full` as a background job."""
        net = self.network(model_id, session)
        info = net.view_info(layer, view=view)
        key = self._layer_key(net, layer, view)
        full_key = sc.cache.make_key("spectrum_summary", key)
        if min(info.shape) > SPECTRUM_FULL_MAX_SIDE:
            summary = self._summary(net, layer, view, compute=False)
            if summary is None:
                top = self.cache.get_or_compute(
                    sc.cache.make_key("top_spectrum", key, SPECTRUM_TOP_K),
                    lambda: sc.top_spectrum(net.matrix(layer, view=view), SPECTRUM_TOP_K),
                )
                return SpectrumData(None, info, tuple(info.shape), {}, top, full_key)
        else:
            summary = self._summary(net, layer, view)
        energy = np.asarray(summary.cumulative_energy)
        reach = {
            f: int(min(np.searchsorted(energy, f - 1e-12) + 1, len(energy)))
            for f in (0.9, 0.99)
            if len(energy)
        }
        return SpectrumData(summary, info, tuple(info.shape), reach, None, full_key)

    def vectors(
        self, model_id: str, layer: str, view: str, k: int, session: str | None
    ) -> VectorsData:
        net = self.network(model_id, session)
        key = self._layer_key(net, layer, view)
        truncated = min(net.view_info(layer, view=view).shape) > FULL_SVD_MAX_SIDE
        rank_k = TRUNCATED_K if truncated else None

        def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            res = sc.svd(net.matrix(layer, view=view), k=rank_k)
            return tuple(
                np.ascontiguousarray(t.detach().to("cpu").float().numpy())
                for t in (res.U, res.S, res.Vh)
            )

        U, S, Vh = self.cache.get_or_compute(sc.cache.make_key("svd", key, rank_k), compute)
        k = max(1, min(int(k), len(S)))
        return VectorsData(
            np.ascontiguousarray(U[:, :k].T),
            S[:k],
            Vh[:k],
            net.view_info(layer, view=view),
            truncated,
            key,
        )

    # ----------------------------------------------------------------- errors
    @staticmethod
    def error_message(err: BaseException) -> str:
        """The sentence to show for `err`: svdcore's own text, else a generic one (logged)."""
        if isinstance(err, sc.SvdscopeError):
            return str(err)
        log.exception("unexpected error in an svdscope view", exc_info=err)
        return (
            "Something went wrong while computing this view "
            f"({type(err).__name__}); the details are in the server log."
        )


@dataclass(frozen=True)
class OpenedUpload:
    id: str
    label: str
    net: Any


def _fmt_number(x: float) -> str:
    if x is None or math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "∞"
    if abs(x) >= 1e4 or abs(x) < 1e-2:
        return f"{x:.2e}"
    return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"
