"""The ESD panel of the Spectrum tab: the layer's eigenvalue density and its diagnostics.

`EsdService` is built once by `app.services.Services` with what it needs. From the layer's
full spectrum (the Spectrum tab's cached summary; for a large layer, once its background job
has computed it): the power-law fit with xmin chosen by the KS distance or given by the user
(typed, or dragged on the figure), Hill's estimate, the Marchenko-Pastur bulk and its spikes,
the ESD of an element-shuffled copy (correlation traps; computed in the request for layers
of up to `SHUFFLED_INLINE_MAX_SIDE` on the smaller side, by the full-spectrum job for larger
ones) and the near-ties among the top singular values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import svdcore as sc
from app.services.caches import ResultCaches
from app.services.layers import SPECTRUM_FULL_MAX_SIDE, LayerViews
from app.services.registry import ModelRegistry
from svdcore.esd import EVALS_THRESH, TIE_TOP

__all__ = ["SHUFFLED_SEED", "EsdData", "EsdOptions", "EsdService", "mp_curve"]

SHUFFLED_SEED = 0  # the shuffled copy is one fixed permutation (the same in the Overview)
SHUFFLED_INLINE_MAX_SIDE = SPECTRUM_FULL_MAX_SIDE


@dataclass(frozen=True)
class EsdOptions:
    """What the user chose: ``xmin`` (None: by the smallest KS distance) and Hill's ``k``
    (None: ceil(sqrt(N)))."""

    xmin: float | None = None
    hill_k: int | None = None

    @classmethod
    def from_page(cls, xmin: Any, hill_k: Any) -> EsdOptions:
        """The page's inputs (numbers, or empty); raises ``sc.DataError`` naming a bad one."""
        x = None
        if xmin not in (None, ""):
            try:
                x = float(xmin)
            except (TypeError, ValueError):
                raise sc.DataError(f"xmin must be a number, got {xmin!r}.") from None
            if not (math.isfinite(x) and x > 0):
                raise sc.DataError(f"xmin must be a positive number, got {xmin!r}.")
        k = None
        if hill_k not in (None, ""):
            try:
                k = int(hill_k)
            except (TypeError, ValueError):
                raise sc.DataError(f"Hill's k must be a whole number, got {hill_k!r}.") from None
            if k != float(hill_k) or k < 1:
                raise sc.DataError(f"Hill's k must be a positive whole number, got {hill_k!r}.")
        return cls(x, k)


@dataclass(frozen=True)
class EsdData:
    """One layer's ESD (``eigenvalues`` ascending, the min(m, n) of W^T W) and its fits.

    ``auto`` is the KS-selected power-law fit, ``fit`` the one shown (``auto`` or the user's
    xmin); ``hill``, ``mp`` (None where they cannot be fitted: ``problems`` says why),
    ``shuffled`` (None while a large layer's job has not computed it), ``ties``."""

    shape: tuple[int, int]
    eigenvalues: np.ndarray
    singular_values: np.ndarray
    auto: sc.PowerLawFit | None
    fit: sc.PowerLawFit | None
    hill: sc.HillEstimate | None
    mp: sc.MarchenkoPasturFit | None
    shuffled: sc.ShuffledSpectrum | None
    ties: tuple[sc.TieGroup, ...]
    options: EsdOptions
    problems: dict[str, str] = field(default_factory=dict)  # "fit" / "hill" / "mp" -> why
    key: str = ""  # content key of the matrix


class EsdService:
    """The ESD panel's analyses (see the module docstring)."""

    def __init__(self, registry: ModelRegistry, caches: ResultCaches, layers: LayerViews) -> None:
        self.registry = registry
        self.caches = caches
        self.layers = layers

    @staticmethod
    def _shuffled_key(key: str) -> str:
        return sc.cache.make_key("shuffled-esd", key, SHUFFLED_SEED)

    def shuffled(
        self, model_id: str, layer: str, view: str, session: str | None, *, compute: bool = True
    ) -> sc.ShuffledSpectrum | None:
        """The shuffled copy's ESD, kept in the shared cache (the full-spectrum job computes
        it for large layers); None when not cached and ``compute`` is False."""
        model = self.registry.open(model_id, session)
        W, key = model.matrix(layer, view)
        cache, skey = self.caches.shared_cache, self._shuffled_key(key)
        if not compute:
            return cache.backend.get(skey)
        summary = self.layers.spectrum_full(model_id, layer, view, session)
        return cache.get_or_compute(
            skey,
            lambda: sc.shuffled_spectrum(
                W, seed=SHUFFLED_SEED, eigenvalues=summary.singular_values**2
            ),
        )

    def esd(
        self, model_id: str, layer: str, view: str, session: str | None, options: EsdOptions
    ) -> EsdData | None:
        """The layer's ESD and diagnostics; None while its full spectrum is not known yet
        (a large layer before its job). Raises ``sc.DataError`` for a user xmin that leaves
        too few eigenvalues or a Hill k out of range (the sentence says which)."""
        data = self.layers.spectrum(model_id, layer, view, session)
        if data.preliminary:
            return None
        model = self.registry.open(model_id, session)
        key = model.key(layer, view)
        shape = tuple(data.shape)
        sv = np.asarray(data.summary.singular_values, dtype=np.float64)
        evals = np.sort(sv**2)
        problems: dict[str, str] = {}

        def base() -> tuple[Any, Any, dict[str, str]]:
            found: dict[str, str] = {}
            auto = _attempt(found, "fit", lambda: sc.fit_powerlaw(evals))
            mp = _attempt(found, "mp", lambda: sc.fit_marchenko_pastur(evals, shape=shape))
            return auto, mp, found

        # the KS scan is O(N^2): once per matrix, not per xmin typed
        auto, mp, found = self.caches.cache.get_or_compute(sc.cache.make_key("esd-base", key), base)
        problems.update(found)
        fit = auto
        if options.xmin is not None:
            fit = sc.fit_powerlaw(evals, xmin=options.xmin)  # a bad xmin is the user's error
        hill = None
        if auto is not None or options.hill_k is not None:
            hill = sc.hill_estimator(evals, k=options.hill_k, thresh=EVALS_THRESH)
        inline = min(shape) <= SHUFFLED_INLINE_MAX_SIDE
        shuffled = self.shuffled(model_id, layer, view, session, compute=inline)
        return EsdData(
            shape=shape,
            eigenvalues=evals,
            singular_values=sv,
            auto=auto,
            fit=fit,
            hill=hill,
            mp=mp,
            shuffled=shuffled,
            ties=tuple(sc.near_ties(sv, top=TIE_TOP)),
            options=options,
            problems=problems,
            key=key,
        )


def mp_curve(
    *, q: float, sigma2: float, n_big: int, weight: float, lo: float, points: int = 240
) -> tuple[np.ndarray, np.ndarray]:
    """The Marchenko-Pastur density (:func:`svdcore.rmt.marchenko_pastur_density`) in the
    units of the eigenvalues of W^T W (N = `n_big`): p(lambda) = p_MP(lambda / N) / N, times
    `weight` (the bulk's share of the histogram), on a log grid over the support from `lo`
    up; NaN where it is 0 (no place on a log axis)."""
    a = n_big * sigma2 * (1 - math.sqrt(q)) ** 2
    b = n_big * sigma2 * (1 + math.sqrt(q)) ** 2
    x = np.geomspace(max(a, lo, b * 1e-6), b, points)
    density = sc.marchenko_pastur_density(x / n_big, q=q, sigma2=sigma2) / n_big * weight
    return x, np.where(density > 0, density, np.nan)


def _attempt(problems: dict[str, str], what: str, run: Any) -> Any:
    """``run()``, or None with the reason in ``problems[what]`` (an svdcore DataError)."""
    try:
        return run()
    except sc.DataError as err:
        problems[what] = str(err)
        return None
