"""Heavy-tailed empirical spectral density (ESD) fits and the per-layer spectral table.

The ESD of a layer W (m, n) is the set of eigenvalues of the correlation matrix W^T W, i.e.
the squared singular values lambda_i = s_i^2 (min(m, n) of them; the rest are zero). Trained
layers tend to have heavy-tailed ESDs, p(lambda) ~ lambda^(-alpha) for lambda >= xmin, and the
exponent alpha is a data-free quality metric (Martin & Mahoney, JMLR 22(165), 2021; their
WeightWatcher tool). :func:`fit_powerlaw` follows WeightWatcher's published method:

- keep the eigenvalues above ``thresh`` (1e-5, WeightWatcher's ``EVALS_THRESH``), sorted;
- for every candidate xmin = lambda_(i) (each eigenvalue but the largest), the continuous
  power-law maximum-likelihood exponent over the n = N - i eigenvalues >= xmin (Clauset,
  Shalizi & Newman 2009, eq. 3.1):  alpha = 1 + n / sum_j log(lambda_j / xmin);
- its Kolmogorov-Smirnov distance D = max_j |F(lambda_j) - j / n| between the fitted CDF
  F(x) = 1 - (x / xmin)^(1 - alpha) and the empirical CDF of the tail, at the sorted tail
  values (j = 0..n-1), as in WeightWatcher's ``WWFit`` (D = 1 where alpha <= 1);
- xmin is the candidate with the smallest D; sigma = (alpha - 1) / sqrt(n) is the standard
  error of alpha.

WeightWatcher does not normalise W by default (its ``normalize=False``); alpha and D do not
depend on the scale of W, only xmin does. ``normalize=True`` divides the eigenvalues by
N = max(m, n) (WeightWatcher's ``normalize=True``: W / sqrt(N)).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ._validate import as_eigenvalues, as_matrix, count
from .exceptions import DataError, ExecutionError, LayerError
from .hill import HillEstimate, hill_estimator
from .network import Network
from .rmt import MarchenkoPasturFit, ShuffledSpectrum, fit_marchenko_pastur, shuffled_spectrum
from .roles import layer_block, layer_role
from .spectrum import SpectrumSummary, singular_values, spectrum_summary
from .ties import TieGroup, near_ties

__all__ = [
    "EVALS_THRESH",
    "MIN_EVALS",
    "TABLE_COLUMNS",
    "TIE_TOP",
    "LayerSpectrum",
    "PowerLawFit",
    "esd_eigenvalues",
    "fit_powerlaw",
    "layer_spectra",
    "layer_spectrum",
    "spectral_table",
]

EVALS_THRESH = 1e-5  # WeightWatcher: eigenvalues at or below this count as zero
MIN_EVALS = 10  # WeightWatcher: fewer eigenvalues than this are not fitted
TIE_TOP = 16  # the table lists near-ties that start among the top 16 singular values


@dataclass(frozen=True, eq=False)
class PowerLawFit:
    """A power-law fit p(lambda) ~ lambda^(-alpha), lambda >= xmin, to an ESD.

    ``alpha`` > 1; ``xmin`` the selected lower cut-off (an eigenvalue); ``D`` its KS distance
    in [0, 1]; ``n_tail`` the eigenvalues >= xmin; ``sigma = (alpha - 1) / sqrt(n_tail)``.
    ``eigenvalues`` (N,) ascending: the values fitted (above ``thresh``). ``xmins``,
    ``alphas``, ``Ds`` (N - 1,): the candidate scan (for a D-versus-xmin plot).
    """

    alpha: float
    xmin: float
    D: float
    n_tail: int
    sigma: float
    eigenvalues: np.ndarray
    xmins: np.ndarray
    alphas: np.ndarray
    Ds: np.ndarray


def esd_eigenvalues(W: torch.Tensor | np.ndarray, *, normalize: bool = False) -> np.ndarray:
    """Eigenvalues of W^T W for W (m, n): the min(m, n) squared singular values, ascending.

    Computed in float64 by :func:`svdcore.spectrum.singular_values` (``"auto"``: a float64
    SVD of small layers, the eigenvalues of the float64 Gram matrix of large ones, whose
    absolute error ~1e-16 s_1^2 is far below the fit's threshold). ``normalize=True``
    divides by N = max(m, n). Invariant (checked in tests): ``sum == ||W||_F^2`` (divided by
    N when normalised).

    Raises ``DataError`` for non-2-D, empty, complex or non-finite input.
    """
    A = as_matrix(W, what="weight matrix", dtype=torch.float64)
    s = singular_values(A).numpy()
    evals = np.sort(s * s)
    if normalize:
        evals = evals / max(A.shape)
    return evals


def _scan(data: np.ndarray, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MLE alpha, KS distance D and sigma for xmin = data[i], i = 0..stop-1 (data ascending)."""
    N = data.size
    logs = np.log(data)
    alphas = np.full(stop, np.nan)
    Ds = np.ones(stop)
    for i in range(stop):
        n = N - i
        rel_logs = logs[i:] - logs[i]  # log(lambda_j / xmin) >= 0
        total = float(rel_logs.sum())
        if total <= 0.0:  # every tail value equals xmin: no exponent
            continue
        a = 1.0 + n / total
        alphas[i] = a
        fitted_cdf = 1.0 - np.exp((1.0 - a) * rel_logs)
        Ds[i] = np.abs(fitted_cdf - np.arange(n) / n).max()
    sigmas = (alphas - 1.0) / np.sqrt(N - np.arange(stop))
    return alphas, Ds, sigmas


def fit_powerlaw(
    eigenvalues: np.ndarray | torch.Tensor | Sequence[float],
    *,
    xmin: float | None = None,
    thresh: float = EVALS_THRESH,
    min_evals: int = MIN_EVALS,
) -> PowerLawFit:
    """Fit a power law to an ESD (N,) by maximum likelihood, xmin by the smallest KS distance.

    See the module docstring for the method (WeightWatcher's ``WWFit``). ``xmin`` fixes the
    cut-off instead (the fit then uses the eigenvalues >= xmin). ``thresh``: eigenvalues at or
    below it are dropped as zeros. Invariant (checked in tests): ``alpha == 1 + n_tail /
    sum(log(lambda / xmin))`` over the ``n_tail`` eigenvalues >= xmin, and ``D`` is the
    smallest over the candidate scan.

    Raises ``DataError`` for NaN/Inf, negative, empty or non-1-D input, fewer than
    ``min_evals`` eigenvalues above ``thresh``, an ``xmin`` that leaves fewer than 2, or a
    tail of equal values (no power law to fit).
    """
    ev = as_eigenvalues(eigenvalues)
    data = np.sort(ev[ev > thresh])
    N = data.size
    need = max(int(min_evals), 2)
    if N < need:
        raise DataError(
            f"a power-law fit needs at least {need} eigenvalues above {thresh:g}, got {N} "
            f"(of {ev.size}); the layer is too small or nearly zero."
        )
    if xmin is not None:
        if not (isinstance(xmin, int | float | np.number) and math.isfinite(xmin) and xmin > 0):
            raise DataError(f"xmin must be a positive number, got {xmin!r}.")
        start = int(np.searchsorted(data, float(xmin), side="left"))
        if N - start < 2:
            raise DataError(
                f"xmin={xmin:g} leaves {N - start} eigenvalue(s) in the tail (largest "
                f"{data[-1]:.4g}); choose a smaller xmin."
            )
        alphas, Ds, sigmas = _scan(data[start:], 1)
        best = 0
        data_tail = data[start:]
        xmins = data_tail[:1]
    else:
        alphas, Ds, sigmas = _scan(data, N - 1)
        valid = np.isfinite(alphas) & (alphas > 1.0)
        if not valid.any():
            raise DataError(
                "the eigenvalues above the threshold are all equal; there is no tail to fit."
            )
        best = int(np.argmin(np.where(valid, Ds, np.inf)))
        data_tail = data[best:]
        xmins = data[:-1]
    alpha = float(alphas[best])
    if not (math.isfinite(alpha) and alpha > 1.0):
        raise DataError("the eigenvalues >= xmin are all equal; there is no tail to fit.")
    return PowerLawFit(
        alpha=alpha,
        xmin=float(data_tail[0]),
        D=float(Ds[best]),
        n_tail=int(data_tail.size),
        sigma=float(sigmas[best]),
        eigenvalues=data,
        xmins=xmins,
        alphas=alphas,
        Ds=Ds,
    )


# --------------------------------------------------------------------------- per-layer table
@dataclass(frozen=True, eq=False)
class LayerSpectrum:
    """One layer's row of the spectral table, with the arrays behind it.

    ``summary`` (singular values, norms, ranks; see :class:`SpectrumSummary`) is None for a
    skipped layer; ``powerlaw`` is None when the layer was skipped or has too few eigenvalues
    for a fit, ``hill`` (:func:`svdcore.hill.hill_estimator`) likewise; ``mp`` the
    Marchenko-Pastur bulk (:func:`svdcore.rmt.fit_marchenko_pastur`, None where there is no
    bulk); ``ties`` the near-ties starting among the top :data:`TIE_TOP` singular values;
    ``shuffled`` the ESD of an element-shuffled copy (correlation traps) when asked for.
    ``note`` says why something is missing ("" when everything was computed).
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    matrix_shape: tuple[int, int] | None
    summary: SpectrumSummary | None
    powerlaw: PowerLawFit | None
    note: str = ""
    dtype: str = ""  # the stored dtype ("bfloat16", "float8_e4m3fn" ...)
    hill: HillEstimate | None = None
    mp: MarchenkoPasturFit | None = None
    ties: tuple[TieGroup, ...] = ()
    shuffled: ShuffledSpectrum | None = None


def layer_spectrum(
    net: Network,
    name: str,
    *,
    view: str = "default",
    max_elements: int | None = None,
    normalize: bool = False,
    thresh: float = EVALS_THRESH,
    randomize: bool = False,
    seed: int = 0,
) -> LayerSpectrum:
    """The spectral-table row of layer ``name`` of ``net`` (see :func:`layer_spectra`).

    ``randomize``: also the ESD of a copy with its entries shuffled (``seed``), for the
    correlation-trap columns (one more Gram eigendecomposition of the layer).

    Never raises for the layer's own content: a layer that cannot be viewed as a matrix,
    lacks ``view``, has more than ``max_elements`` entries (None: no limit, the default)
    or holds NaN / Inf is returned with ``summary=None`` and a note saying why. Raises
    ``LayerError`` for a name ``net`` does not have.
    """
    info = net.layer(name)
    base = {"name": info.name, "kind": info.kind, "shape": tuple(info.shape), "dtype": info.dtype}
    if not info.viewable:
        note = f"skipped: not viewable as a matrix ({info.note})"
        return LayerSpectrum(**base, matrix_shape=None, summary=None, powerlaw=None, note=note)
    try:
        shape = net.view_info(info.name, view=view).shape
    except LayerError as exc:
        return LayerSpectrum(
            **base, matrix_shape=None, summary=None, powerlaw=None, note=f"skipped: {exc}"
        )
    size = shape[0] * shape[1]
    if max_elements is not None and size > max_elements:
        note = (
            f"skipped: {shape[0]}x{shape[1]} = {size} entries > max_elements={max_elements}; "
            "raise max_elements to include it"
        )
        return LayerSpectrum(**base, matrix_shape=shape, summary=None, powerlaw=None, note=note)
    try:  # NaN/Inf weights: this layer says so, the others are still summarised
        W = net.matrix(info.name, view=view)
        summary = spectrum_summary(W)
    except DataError as exc:
        return LayerSpectrum(
            **base, matrix_shape=shape, summary=None, powerlaw=None, note=f"skipped: {exc}"
        )
    scale = float(max(shape)) if normalize else 1.0
    evals = summary.singular_values**2 / scale
    notes = [info.note]  # e.g. an fp8 weight with no scale
    try:
        fit: PowerLawFit | None = fit_powerlaw(evals, thresh=thresh)
        hill: HillEstimate | None = hill_estimator(evals, thresh=thresh)
    except DataError as exc:
        fit, hill = None, None
        notes.append(f"no power-law fit: {exc}")
    try:
        mp: MarchenkoPasturFit | None = fit_marchenko_pastur(evals, shape=shape, scale=scale)
    except DataError:
        mp = None  # a rank-deficient layer has no bulk: the MP columns stay empty
    ties = tuple(near_ties(summary.singular_values, top=TIE_TOP))
    shuffled = None
    if randomize:
        shuffled = shuffled_spectrum(W, seed=seed, eigenvalues=summary.singular_values**2)
    return LayerSpectrum(
        **base,
        matrix_shape=shape,
        summary=summary,
        powerlaw=fit,
        note="; ".join(n for n in notes if n),
        hill=hill,
        mp=mp,
        ties=ties,
        shuffled=shuffled,
    )


def layer_spectra(
    net: Network,
    *,
    view: str = "default",
    max_elements: int | None = None,
    normalize: bool = False,
    thresh: float = EVALS_THRESH,
    randomize: bool = False,
    seed: int = 0,
    progress: Callable[[int, int, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[LayerSpectrum]:
    """Spectrum summary and ESD power-law fit of every layer of ``net``, in layer order.

    The matrix is ``net.matrix(name, view=view)`` (float32); its summary is
    :func:`svdcore.spectrum_summary` (float64 singular values, the Gram route for large
    layers) and the ESD its squared singular values (divided by max(m, n) when
    ``normalize``). Every layer is computed, whatever its size, unless ``max_elements``
    (None: no limit, the default) caps it; skipped layers carry a note
    (:func:`layer_spectrum`; ``randomize``: the shuffled-copy ESDs too).
    ``progress(done, total, name)`` is called after each layer;
    ``should_stop()`` True before a layer raises ``ExecutionError("cancelled")``.
    Invariant (checked in tests): every number equals the :mod:`svdcore.spectrum` function
    on the same matrix.

    Raises ``DataError`` if ``net`` is not a Network or ``max_elements`` is not positive.
    """
    if not isinstance(net, Network):
        raise DataError(f"spectral tables need a svdcore Network, got {type(net).__name__}.")
    count(max_elements, what="max_elements", none=True)
    rows: list[LayerSpectrum] = []
    total = len(net.layers)
    for done, info in enumerate(net.layers, start=1):
        if should_stop is not None and should_stop():
            raise ExecutionError("cancelled")
        rows.append(
            layer_spectrum(
                net,
                info.name,
                view=view,
                max_elements=max_elements,
                normalize=normalize,
                thresh=thresh,
                randomize=randomize,
                seed=seed,
            )
        )
        if progress is not None:
            progress(done, total, info.name)
    return rows


TABLE_COLUMNS: tuple[str, ...] = (
    "name",
    "kind",
    "role",
    "block",
    "shape",
    "dtype",
    "rows",
    "cols",
    "spectral_norm",
    "frobenius_norm",
    "stable_rank",
    "effective_rank",
    "numerical_rank",
    "condition_number",
    "alpha",
    "xmin",
    "D",
    "sigma",
    "n_tail",
    "n_evals",
    "alpha_hill",
    "hill_k",
    "mp_sigma2",
    "mp_edge",
    "n_spikes",
    "bulk_fraction",
    "rand_distance",
    "n_traps",
    "near_ties",
    "note",
)


def spectral_table(
    net: Network | Sequence[LayerSpectrum],
    *,
    view: str = "default",
    max_elements: int | None = None,
    normalize: bool = False,
    thresh: float = EVALS_THRESH,
    randomize: bool = False,
    seed: int = 0,
) -> pd.DataFrame:
    """The per-layer spectral table of ``net`` (or of rows from :func:`layer_spectra`).

    One row per layer (columns :data:`TABLE_COLUMNS`): name, kind, its ``role`` and
    ``block`` (:mod:`svdcore.roles`), tensor ``shape`` as "256x64", the stored ``dtype``,
    matrix ``rows``/``cols``, spectral and Frobenius norms, stable and effective rank,
    numerical rank, condition number, the ESD power-law
    ``alpha``, ``xmin``, KS ``D``, ``sigma``, ``n_tail`` (eigenvalues >= xmin), ``n_evals``
    (eigenvalues fitted), Hill's ``alpha_hill`` from the top ``hill_k``, the
    Marchenko-Pastur bulk (``mp_sigma2``, its edge ``mp_edge`` in the ESD's units,
    ``n_spikes`` above the Tracy-Widom threshold, the ``bulk_fraction`` of the energy), with
    ``randomize`` the shuffled copy's ``rand_distance`` and ``n_traps`` (NaN / <NA>
    without), ``near_ties`` ("σ3–σ4, ...", groups starting among the top :data:`TIE_TOP`)
    and a ``note`` for layers skipped or not fitted (their numbers are NaN / <NA>). CSV-ready:
    ``table.to_csv(index=False)``. Invariant (checked in tests): one row per layer of
    ``net.layers``, in order, and the numbers equal the :mod:`svdcore.spectrum` functions.

    Raises ``DataError`` as :func:`layer_spectra`.
    """
    if isinstance(net, Network):
        rows = layer_spectra(
            net,
            view=view,
            max_elements=max_elements,
            normalize=normalize,
            thresh=thresh,
            randomize=randomize,
            seed=seed,
        )
    else:
        rows = list(net)
        if not all(isinstance(r, LayerSpectrum) for r in rows):
            raise DataError("spectral_table needs a Network or a list of LayerSpectrum rows.")
    records = []
    for r in rows:
        s, p, h, mp, sh = r.summary, r.powerlaw, r.hill, r.mp, r.shuffled
        records.append(
            {
                "name": r.name,
                "kind": r.kind,
                "role": layer_role(r.name, r.kind),
                "block": layer_block(r.name),
                "shape": "x".join(str(d) for d in r.shape),
                "dtype": r.dtype,
                "rows": r.matrix_shape[0] if r.matrix_shape else None,
                "cols": r.matrix_shape[1] if r.matrix_shape else None,
                "spectral_norm": s.spectral_norm if s else math.nan,
                "frobenius_norm": s.frobenius_norm if s else math.nan,
                "stable_rank": s.stable_rank if s else math.nan,
                "effective_rank": s.effective_rank if s else math.nan,
                "numerical_rank": s.numerical_rank if s else None,
                "condition_number": s.condition_number if s else math.nan,
                "alpha": p.alpha if p else math.nan,
                "xmin": p.xmin if p else math.nan,
                "D": p.D if p else math.nan,
                "sigma": p.sigma if p else math.nan,
                "n_tail": p.n_tail if p else None,
                "n_evals": p.eigenvalues.size if p else None,
                "alpha_hill": h.alpha if h else math.nan,
                "hill_k": h.k if h else None,
                "mp_sigma2": mp.sigma2 if mp else math.nan,
                "mp_edge": mp.lambda_plus if mp else math.nan,
                "n_spikes": mp.n_spikes if mp else None,
                "bulk_fraction": mp.bulk_fraction if mp else math.nan,
                "rand_distance": sh.distance if sh else math.nan,
                "n_traps": sh.n_traps if sh else None,
                "near_ties": ", ".join(t.label() for t in r.ties),
                "note": r.note,
            }
        )
    df = pd.DataFrame(records, columns=list(TABLE_COLUMNS))
    for col in (
        "rows",
        "cols",
        "numerical_rank",
        "n_tail",
        "n_evals",
        "hill_k",
        "n_spikes",
        "n_traps",
    ):
        df[col] = df[col].astype("Int64")
    return df
