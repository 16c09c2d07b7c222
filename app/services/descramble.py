"""Descrambling for the page: options, cache keys, data sources, results as numpy arrays.

`DescrambleService` is built once by `app.services.Services` with what it needs. Results live in
`ResultCaches.shared_cache`, which background-job processes (forked by Dash's
DiskcacheManager) see as well: an iterative result computed in a job is then a cache hit in
the server process that draws it.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

import svdcore as sc
from app.services.base import DataAnalysis
from app.services.datasets import DATASET_ZOO
from app.services.jobs import cached_unless_cancelled
from svdcore import wiretap as sc_wiretap
from svdcore.fourier import FFTView, fft2_view

__all__ = [
    "CRITERIA",
    "METHODS",
    "OPTIMIZERS",
    "POSITIONS",
    "SOURCES",
    "STENCILS",
    "DescrambleData",
    "DescrambleOptions",
    "DescrambleService",
]

# the engine's option lists (svdcore.wiretap), re-exported for the views
SOURCES = sc_wiretap.SOURCES
STENCILS = sc_wiretap.STENCILS
METHODS = sc_wiretap.METHODS
OPTIMIZERS = sc_wiretap.OPTIMIZERS
CRITERIA = sc_wiretap.CRITERIA
POSITIONS = sc_wiretap.POSITIONS
MAX_NOISE_SAMPLES = 200_000
MAX_DATA_SAMPLES = 20_000  # the example networks generate their data on demand
MAX_STEPS = 100_000
DATA_SEED = 0
DATA_SPLIT = "test"
_DATA_MEMO = 4


@dataclass(frozen=True)
class DescrambleOptions(sc_wiretap.DescrambleOptions):
    """What the Descramble view asks for: svdcore's options record (which owns the
    normalisation and the cache key), with the page's limits on N, steps and lr.

    ``samples``: N for the noise source and the number of dataset inputs (dataset and
    Jacobian sources). ``criterion``: "smoothness", "mds" (maximum diagonal sum) or
    "max_diagonal_norm" (maximum diagonal norm^2, iterative only).
    """

    def validate(self) -> None:
        """Raise sc.DataError with a sentence for an out-of-range or unknown option."""
        self.check_choices()
        limit = MAX_NOISE_SAMPLES if self.source == "noise" else MAX_DATA_SAMPLES
        if self.uses_samples and not 1 <= self.samples <= limit:
            raise sc.DataError(f"N must be between 1 and {limit:,} for this data source.")
        if self.method == "iterative":
            if not 1 <= self.steps <= MAX_STEPS:
                raise sc.DataError(f"The number of steps must be between 1 and {MAX_STEPS:,}.")
            if not (math.isfinite(self.lr) and 0 < self.lr <= 1):
                raise sc.DataError("The first step (learning rate) must be a number in (0, 1].")
        super().validate()


@dataclass(frozen=True)
class DescrambleData:
    """One descrambled layer, as arrays for the figures and numbers for the page.

    W (n, d) raw, PW = P W, P (n, n), phi = T_r^T P U_r (r, r), U_r (n, r) left singular
    vectors of P W (signs matched to the basis), basis_r (n, r) the r smoothest stencil
    eigenvectors; ``max_angle_deg`` the largest principal angle between their spans.
    """

    options: DescrambleOptions
    layer: str
    info: Any  # sc.ViewInfo of the layer (axis labels)
    W: np.ndarray
    PW: np.ndarray
    P: np.ndarray
    phi: np.ndarray
    U_r: np.ndarray
    basis_r: np.ndarray
    sigma_r: np.ndarray
    objective: float
    bound: float | None
    gap: float | None
    max_angle_deg: float
    rank: int
    n_signals: float
    det_sign: float
    phi_distance: float  # ||phi - I||_F / sqrt(r)
    method: str
    criterion: str
    source: str
    position: str
    steps: int
    converged: bool
    cancelled: bool
    note: str
    history: np.ndarray
    c: float | None = None
    next_layer: str | None = None
    W_next: np.ndarray | None = None
    W_next_Pt: np.ndarray | None = None


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    if t is None:
        return None
    return np.ascontiguousarray(t.detach().to("cpu").float().numpy())


class DescrambleService(DataAnalysis):
    """The descramble analyses of the page."""

    # ------------------------------------------------------------------ choices
    def choices(
        self, model_id: str, session: str | None, dataset: str | None = None
    ) -> dict[str, str]:
        """Reasons why a data source or position cannot be used for this model (and the
        dataset chosen in the sidebar, None / "zoo" = the zoo's own data), keyed
        "source:<value>" / "position:<value>"; usable choices are absent."""
        model = self.registry.open(model_id, session)
        reasons: dict[str, str] = {}
        if not model.net.executable:
            why = "this model holds weights only, so it cannot be run on data"
            for key in ("source:dataset", "source:jacobian", "position:activation"):
                reasons[key] = why
            reasons["position:second"] = why
        elif _uploaded(dataset):
            try:
                self.datasets.open(model_id, dataset, session)
            except sc.SvdscopeError as err:
                why = f"the chosen dataset cannot be used ({str(err).rstrip('.')})"
                reasons["source:dataset"] = reasons["source:jacobian"] = why
        elif model.entry.kind != "zoo":
            why = "no dataset is chosen for this model (pick or upload one in the sidebar)"
            reasons["source:dataset"] = reasons["source:jacobian"] = why
        return reasons

    # ------------------------------------------------------------------ keys
    def key(
        self,
        model_id: str,
        layer: str,
        options: DescrambleOptions,
        session: str | None,
        dataset: str | None = None,
    ) -> str:
        """Cache key of a descrambling: (weights content, data, normalised options)."""
        model = self.registry.open(model_id, session)
        opts = options.normalized()
        content = model.net.content_key() if opts.needs_network else model.key(layer, "default")
        if opts.uses_data and _uploaded(dataset):
            opened = self.datasets.open(model_id, dataset, session)
            data: tuple[Any, ...] = ("dataset", opened.key, opts.samples)
        elif opts.uses_data:
            data = ("zoo", model_id, opts.samples, DATA_SEED, DATA_SPLIT)
        else:
            data = (opts.source,)
        return sc.cache.make_key("descramble", content, layer, data, opts.cache_key())

    # ------------------------------------------------------------------ compute
    def run(
        self,
        model_id: str,
        layer: str,
        options: DescrambleOptions,
        session: str | None,
        *,
        compute: bool = True,
        progress: Callable[[int, int, float], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        dataset: str | None = None,
    ) -> DescrambleData | None:
        """The descrambled layer for `options` (cached); with compute=False, None unless
        it is already cached. A cancelled iterative run is returned but not cached.
        `dataset`: an uploaded dataset id for the dataset / Jacobian sources (None or
        "zoo": the example network's own test split)."""
        options.validate()
        reason = self.choices(model_id, session, dataset)
        opts = options.normalized()
        for kind, value in (("source", opts.source), ("position", opts.position)):
            why = reason.get(f"{kind}:{value}")
            if why:
                raise sc.DataError(f"The {kind} '{value}' is not available: {why}.")
        key = self.key(model_id, layer, opts, session, dataset)
        if not compute:
            return self.caches.shared_cache.backend.get(key)

        def run() -> DescrambleData:
            net = self.registry.open(model_id, session).net
            x, data_note = None, ""
            if opts.uses_data and _uploaded(dataset):
                x, data_note = self.datasets.inputs(model_id, dataset, session, opts.samples)
            elif opts.uses_data:
                x, data_note = _zoo_inputs(model_id, opts.samples)
            res = opts.run(net, layer, x=x, progress=progress, should_stop=should_stop)
            data = _to_data(res, opts, net.view_info(layer))
            if data_note:
                data = replace(data, note=" ".join(filter(None, (data_note, data.note))))
            return data

        return cached_unless_cancelled(
            self.caches.shared_cache, key, run, cancelled=lambda data: data.cancelled
        )

    @staticmethod
    def ffts(data: DescrambleData, *, symmetrize: bool, log: bool) -> tuple[FFTView, FFTView]:
        """2-D FFT views (|fftshift(fft2)|) of W and of P W."""
        return (
            fft2_view(data.W, symmetrize=symmetrize, log=log),
            fft2_view(data.PW, symmetrize=symmetrize, log=log),
        )


@functools.lru_cache(maxsize=_DATA_MEMO)
def _zoo_inputs(name: str, n: int) -> tuple[torch.Tensor, str]:
    """n inputs of example network `name` (its test split), and a note when the split
    is smaller than n (a fixed dataset: then all of it is used). Kept for the last
    `_DATA_MEMO` (name, n): the example networks generate their data on demand."""
    make_data = sc.zoo.get(name).make_data
    note = ""
    x = None
    parameter = inspect.signature(make_data).parameters.get("n")
    if parameter is not None and parameter.default is None:  # fixed: n=None = the split
        whole, _ = make_data(n=None, seed=DATA_SEED, split=DATA_SPLIT)
        if len(whole) <= n:
            x = whole
            if len(whole) < n:
                note = (
                    f"The {DATA_SPLIT} split of {name} has {len(whole):,} inputs; "
                    f"all of them are used (N asked: {n:,})."
                )
    if x is None:
        x, _ = make_data(n=n, seed=DATA_SEED, split=DATA_SPLIT)
    return x, note


def _uploaded(dataset: str | None) -> bool:
    """True for an uploaded dataset id (not None, not the zoo's own data)."""
    return bool(dataset) and dataset != DATASET_ZOO


def _to_data(res: Any, opts: DescrambleOptions, info: Any) -> DescrambleData:
    """LayerDescrambling (torch) -> DescrambleData (numpy float32 arrays, plain numbers);
    the derived numbers (det sign, largest angle, phi distance) are the engine's."""
    out = res.result
    return DescrambleData(
        options=opts,
        layer=res.layer,
        info=info,
        W=_np(res.W),
        PW=_np(res.PW),
        P=_np(out.P),
        phi=_np(res.phi),
        U_r=_np(res.U_r),
        basis_r=_np(res.basis_r),
        sigma_r=_np(res.sigma_r),
        objective=float(out.objective),
        bound=None if out.bound is None else float(out.bound),
        gap=out.gap,
        max_angle_deg=res.max_angle_deg,
        rank=res.rank,
        n_signals=float(res.n_signals),
        det_sign=res.det_sign,
        phi_distance=res.phi_distance,
        method=out.method,
        criterion=out.criterion,
        source=res.source,
        position=res.position,
        steps=int(out.steps),
        converged=bool(out.converged),
        cancelled=bool(out.cancelled),
        note=out.note,
        history=np.asarray(out.history, dtype=np.float64),
        c=res.c,
        next_layer=res.next_layer,
        W_next=_np(res.W_next),
        W_next_Pt=_np(res.W_next_Pt),
    )
