"""Fits of a vector (a singular vector, usually) to a model family.

Researchers read meaning into singular vectors: the top right singular vectors of the first
layer of an ILR network are biexponential curves (Sule et al., Figs. 6-7), the left singular
vectors of a descrambled DEERNet W2 are distorted Chebyshev polynomials (Amey et al., Fig. 4),
and noise-descrambled singular vectors are sinusoids (the trigonometric basis T of Sule et al.
eq. 20). Each family here is a least-squares fit returning one :class:`Fit`:

- ``"biexponential"``: ``c1 exp(-t/T1) + c2 exp(-t/T2) + d`` with ``c1, c2, d`` of any sign
  (Sule et al. needed signs free: the vectors need not decay). The model is linear in
  ``(c1, c2, d)``, so for each ``(T1, T2)`` those are solved exactly (variable projection,
  Golub & Pereyra) and ``scipy.optimize.least_squares`` moves ``(log T1, log T2)`` from
  several log-spaced starts; the best end point wins. Reported with ``T1 <= T2``.
- ``"chebyshev"``: ``sum_j c_j T_j(x)``, ``j = 0..degree``, ``x`` mapped onto [-1, 1].
- ``"trig"``: the first ``terms`` columns of :func:`svdcore.descramble.trig_basis` (constant,
  sin 1, cos 1, sin 2, ...), orthonormal, so the fit is a projection.

A vector that is two signals side by side (Sule's (ND, ND) and (ND, Reg) inputs are two
64-point halves) is fitted part by part with ``split=`` (one split point or several), each part
getting its own :class:`Fit` (``Fit.span`` says where it lies in the input).

Goodness of fit: ``residual = y - fitted``, ``r2 = 1 - sum(residual^2) / sum((y - mean y)^2)``
(nan for a constant part, where it is undefined), ``rmse = sqrt(mean(residual^2))``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from numpy.polynomial import chebyshev as npcheb
from scipy.optimize import least_squares

from ._validate import count
from .descramble import trig_basis
from .exceptions import DataError

__all__ = [
    "FAMILIES",
    "Fit",
    "fit_biexponential",
    "fit_chebyshev",
    "fit_trig",
    "fit_vector",
]

Family = Literal["biexponential", "chebyshev", "trig"]
FAMILIES: tuple[str, ...] = ("biexponential", "chebyshev", "trig")
Split = int | Sequence[int] | None

_MIN_BIEXP_POINTS = 6  # five parameters, and one degree of freedom left over
_DEFAULT_STARTS = 5  # log-spaced time constants -> 10 (T1 < T2) start pairs


@dataclass(frozen=True, eq=False)
class Fit:
    """One least-squares fit of a vector part ``y`` (n,) to a model family.

    ``params``: the family's parameters by name (biexponential: ``c1, T1, c2, T2, d`` with
    ``T1 <= T2``; chebyshev: ``c0..c{degree}``; trig: ``a0..a{terms-1}``), plain floats.
    ``fitted`` and ``residual`` have shape (n,) with ``fitted + residual == y``.
    ``span = (start, stop)``: the part's indices in the vector passed in (``(0, n)`` unsplit).
    """

    family: str
    params: dict[str, float]
    fitted: np.ndarray
    residual: np.ndarray
    r2: float
    rmse: float
    span: tuple[int, int] = (0, 0)


# --------------------------------------------------------------------------- input checks
def _as_vector(y: object, *, what: str = "vector") -> np.ndarray:
    """``y`` as a finite, non-empty float64 1-D numpy array, or ``DataError``."""
    if isinstance(y, torch.Tensor):
        if y.is_complex():
            raise DataError(f"{what} is complex ({y.dtype}); fits take real vectors only.")
        y = y.detach().cpu().double().numpy()
    elif isinstance(y, list | tuple):
        try:
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(f"{what} must be a list of numbers.") from None
    if not isinstance(y, np.ndarray):
        raise DataError(f"{what} must be a numpy array or torch.Tensor, got {type(y).__name__}.")
    if y.dtype == object or not np.issubdtype(y.dtype, np.number):
        raise DataError(f"{what} must be numeric, got an array of dtype {y.dtype}.")
    if np.iscomplexobj(y):
        raise DataError(f"{what} is complex ({y.dtype}); fits take real vectors only.")
    y = np.squeeze(y) if y.ndim > 1 and sum(s > 1 for s in y.shape) <= 1 else y
    if y.ndim != 1:
        raise DataError(
            f"{what} must be 1-D, got shape {tuple(y.shape)}; fit one singular vector "
            "(a column of U or a row of Vh) at a time."
        )
    if y.size == 0:
        raise DataError(f"{what} is empty; there is nothing to fit.")
    y = y.astype(np.float64)
    bad = ~np.isfinite(y)
    if bad.any():
        raise DataError(
            f"{what} of length {y.size} contains {int(bad.sum())} NaN or infinite value(s), "
            f"the first at index {int(np.flatnonzero(bad)[0])}; remove or replace them first."
        )
    return y


def _parts(n: int, split: Split, *, minimum: int, family: str) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering 0..n, cut at the split point(s); checked."""
    if split is None:
        points: list[int] = []
    else:
        if isinstance(split, int | np.integer):
            raw: list[object] = [split]
        elif isinstance(split, Sequence | np.ndarray):
            raw = list(split)
        else:
            raw = [split]
        if any(isinstance(s, bool) or not isinstance(s, int | np.integer) for s in raw):
            raise DataError(f"split must be an integer index or a list of them, got {split!r}.")
        points = [int(s) for s in raw]
        if not points:
            raise DataError("split is an empty list; give a split point or leave split=None.")
        for s in points:
            if not 0 < s < n:
                raise DataError(
                    f"split point {s} lies outside 1..{n - 1} for a vector of length {n}; "
                    f"for two equal halves use split={n // 2}."
                )
        if any(b <= a for a, b in itertools.pairwise(points)):
            raise DataError(f"split points must be strictly increasing, got {points}.")
    edges = [0, *points, n]
    spans = list(itertools.pairwise(edges))
    for start, stop in spans:
        if stop - start < minimum:
            where = "the vector" if len(spans) == 1 else f"the part [{start}:{stop}]"
            raise DataError(
                f"{where} has {stop - start} point(s); a {family} fit needs at least {minimum}."
            )
    return spans


def _abscissa(
    values: object, n: int, spans: list[tuple[int, int]], *, name: str
) -> list[np.ndarray] | None:
    """Split a user abscissa (length n, or the common length of every part) per part."""
    if values is None:
        return None
    v = _as_vector(values, what=name)
    lengths = {stop - start for start, stop in spans}
    if v.size == n:
        return [v[start:stop] for start, stop in spans]
    if len(lengths) == 1 and v.size == next(iter(lengths)):
        return [v for _ in spans]
    per_part = (
        f" or {next(iter(lengths))} (one part)" if len(lengths) == 1 and len(spans) > 1 else ""
    )
    raise DataError(f"{name} has {v.size} values; it needs {n} (one per entry){per_part}.")


def _goodness(y: np.ndarray, fitted: np.ndarray) -> tuple[np.ndarray, float, float]:
    residual = y - fitted
    ss_res = float(residual @ residual)
    centred = y - y.mean()
    ss_tot = float(centred @ centred)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan
    return residual, r2, math.sqrt(ss_res / y.size)


def _make_fit(
    family: str, params: dict[str, float], y: np.ndarray, fitted: np.ndarray, span: tuple[int, int]
) -> Fit:
    residual, r2, rmse = _goodness(y, fitted)
    return Fit(family, params, fitted, residual, r2, rmse, (int(span[0]), int(span[1])))


def _run_parts(
    v: np.ndarray,
    spans: list[tuple[int, int]],
    *,
    split: Split,
    family: str,
    fit_one: Callable[[np.ndarray, int], tuple[dict[str, float], np.ndarray]],
) -> Fit | tuple[Fit, ...]:
    fits = []
    for i, (start, stop) in enumerate(spans):
        params, fitted = fit_one(v[start:stop], i)
        fits.append(_make_fit(family, params, v[start:stop], fitted, (start, stop)))
    return fits[0] if split is None else tuple(fits)


# --------------------------------------------------------------------------- biexponential
def _biexp_columns(t: np.ndarray, T1: float, T2: float) -> np.ndarray:
    with np.errstate(over="ignore", under="ignore"):
        return np.column_stack([np.exp(-t / T1), np.exp(-t / T2), np.ones_like(t)])


def _biexp_linear(t: np.ndarray, y: np.ndarray, T1: float, T2: float) -> np.ndarray:
    coef, *_ = np.linalg.lstsq(_biexp_columns(t, T1, T2), y, rcond=None)
    return coef


def _time_scales(t: np.ndarray) -> tuple[float, float]:
    """(smallest positive spacing, total span) of a time grid; DataError if degenerate."""
    ts = np.unique(t)
    if ts.size < _MIN_BIEXP_POINTS:
        raise DataError(
            f"t has {ts.size} distinct value(s); a biexponential fit needs at least "
            f"{_MIN_BIEXP_POINTS} distinct times."
        )
    return float(np.diff(ts).min()), float(ts[-1] - ts[0])


def _start_pairs(starts: int | Sequence[Sequence[float]], dt: float, span: float) -> np.ndarray:
    if isinstance(starts, int | np.integer) and not isinstance(starts, bool):
        if starts < 2:
            raise DataError(f"starts must be at least 2 (log-spaced time constants), got {starts}.")
        grid = np.geomspace(dt, span, int(starts))
        return np.array(list(itertools.combinations(grid, 2)), dtype=np.float64)
    try:
        pairs = np.asarray(starts, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        raise DataError(
            "starts must be an integer or a list of (T1, T2) pairs of positive times."
        ) from None
    if pairs.size == 0 or not np.isfinite(pairs).all() or (pairs <= 0).any():
        raise DataError("starts must be an integer or a list of (T1, T2) pairs of positive times.")
    return np.sort(pairs, axis=1)


def _fit_biexp_part(
    y: np.ndarray,
    t: np.ndarray,
    starts: int | Sequence[Sequence[float]],
) -> tuple[dict[str, float], np.ndarray]:
    dt, span = _time_scales(t)
    t0 = float(t.min())
    ts = t - t0  # fit on t >= 0 (no overflow); constants moved back to the caller's origin
    lo, hi = math.log(dt / 10.0), math.log(100.0 * span)

    def residual(theta: np.ndarray) -> np.ndarray:
        T1, T2 = np.exp(theta)
        A = _biexp_columns(ts, T1, T2)
        coef, *_ = np.linalg.lstsq(A, y, rcond=None)
        return A @ coef - y

    best: tuple[float, np.ndarray] | None = None
    for T1, T2 in _start_pairs(starts, dt, span):
        x0 = np.clip(np.log([T1, T2]), lo + 1e-9, hi - 1e-9)
        res = least_squares(residual, x0, bounds=([lo, lo], [hi, hi]), x_scale=1.0)
        cost = float(res.fun @ res.fun)
        if best is None or cost < best[0]:
            best = (cost, res.x)
    assert best is not None
    T1, T2 = sorted(float(v) for v in np.exp(best[1]))
    c1s, c2s, d = _biexp_linear(ts, y, T1, T2)
    fitted = _biexp_columns(ts, T1, T2) @ np.array([c1s, c2s, d])
    with np.errstate(over="ignore"):
        c1 = float(c1s * math.exp(min(t0 / T1, 700.0)))
        c2 = float(c2s * math.exp(min(t0 / T2, 700.0)))
    params = {"c1": c1, "T1": T1, "c2": c2, "T2": T2, "d": float(d)}
    return params, fitted


def fit_biexponential(
    y: np.ndarray | torch.Tensor,
    *,
    t: np.ndarray | torch.Tensor | None = None,
    starts: int | Sequence[Sequence[float]] = _DEFAULT_STARTS,
    split: Split = None,
) -> Fit | tuple[Fit, ...]:
    """Fit ``y`` (n,) to ``c1 exp(-t/T1) + c2 exp(-t/T2) + d``, signs of c1, c2, d free.

    ``t``: the sample times, length n (or, with ``split``, the length of every part); default
    ``0, 1, ..., n_part - 1`` per part. ``starts``: an integer K (K log-spaced time constants
    from the smallest spacing of ``t`` to its span; every pair T1 < T2 is a start) or explicit
    ``(T1, T2)`` pairs. Time constants are kept in ``[dt/10, 100 * span]`` (dt the smallest
    spacing), i.e. positive and resolvable on the grid. ``split``: one split point ``s`` (parts
    ``y[:s]``, ``y[s:]``) or increasing split points; each part is fitted on its own.

    Returns one :class:`Fit` (``split=None``) or a tuple of them, one per part. Params are
    reported with ``T1 <= T2``. Invariant (checked in tests): ``fitted + residual == y`` and
    ``fitted == c1 exp(-t/T1) + c2 exp(-t/T2) + d`` at the reported parameters.

    Raises ``DataError`` for a non-1-D, empty or non-finite ``y``, a part shorter than 6
    points, a split point outside ``1..n-1``, or a ``t`` of the wrong length.
    """
    v = _as_vector(y)
    spans = _parts(v.size, split, minimum=_MIN_BIEXP_POINTS, family="biexponential")
    times = _abscissa(t, v.size, spans, name="t")

    def one(part: np.ndarray, i: int) -> tuple[dict[str, float], np.ndarray]:
        tt = np.arange(part.size, dtype=np.float64) if times is None else times[i]
        return _fit_biexp_part(part, tt, starts)

    return _run_parts(v, spans, split=split, family="biexponential", fit_one=one)


# --------------------------------------------------------------------------- chebyshev
def _to_window(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        raise DataError(
            "x must span an interval (its values are all equal); cannot map to [-1, 1]."
        )
    return 2.0 * (x - lo) / (hi - lo) - 1.0


def fit_chebyshev(
    y: np.ndarray | torch.Tensor,
    *,
    degree: int,
    x: np.ndarray | torch.Tensor | None = None,
    split: Split = None,
) -> Fit | tuple[Fit, ...]:
    """Least-squares fit of ``y`` (n,) by ``sum_{j=0}^{degree} c_j T_j(x)`` on [-1, 1].

    ``x``: the abscissa, length n (or with ``split`` that of every part), mapped affinely so
    its smallest value is -1 and its largest +1; default ``linspace(-1, 1, n_part)``.
    Params ``c0..c{degree}`` (numpy.polynomial.chebyshev coefficients in that window).
    Invariant (checked in tests): ``fitted == chebval(x_window, c)`` and the residual is
    orthogonal to every ``T_j(x_window)`` column (normal equations).

    Raises ``DataError`` for bad ``y``, a negative or non-integer ``degree``, or a part with
    fewer than ``degree + 1`` points.
    """
    if isinstance(degree, bool) or not isinstance(degree, int | np.integer) or degree < 0:
        raise DataError(f"degree must be a non-negative integer, got {degree!r}.")
    deg = int(degree)
    v = _as_vector(y)
    family = f"chebyshev (degree {deg})"
    spans = _parts(v.size, split, minimum=deg + 1, family=family)
    xs = _abscissa(x, v.size, spans, name="x")

    def one(part: np.ndarray, i: int) -> tuple[dict[str, float], np.ndarray]:
        xw = np.linspace(-1.0, 1.0, part.size) if xs is None else _to_window(xs[i])
        V = npcheb.chebvander(xw, deg)
        coef, *_ = np.linalg.lstsq(V, part, rcond=None)
        return {f"c{j}": float(c) for j, c in enumerate(coef)}, V @ coef

    return _run_parts(v, spans, split=split, family="chebyshev", fit_one=one)


# --------------------------------------------------------------------------- trigonometric
def fit_trig(
    y: np.ndarray | torch.Tensor,
    *,
    terms: int,
    split: Split = None,
) -> Fit | tuple[Fit, ...]:
    """Least-squares fit of ``y`` (n,) on the first ``terms`` columns of ``trig_basis(n)``.

    The columns (constant, sin 1, cos 1, sin 2, cos 2, ...; Sule et al. eq. 20) are
    orthonormal, so the coefficients are ``a = T[:, :terms]^T y`` and ``fitted = T a``.
    Params ``a0..a{terms-1}``. Invariant (checked in tests): ``terms == n`` reproduces ``y``
    exactly and ``||fitted||^2 == sum a_j^2``.

    Raises ``DataError`` for bad ``y``, or ``terms`` outside ``1..n_part``.
    """
    k = count(terms, what="terms")
    v = _as_vector(y)
    spans = _parts(v.size, split, minimum=k, family=f"trig ({k} terms)")

    def one(part: np.ndarray, _i: int) -> tuple[dict[str, float], np.ndarray]:
        T = trig_basis(part.size).numpy()[:, :k]
        a = T.T @ part
        return {f"a{j}": float(c) for j, c in enumerate(a)}, T @ a

    return _run_parts(v, spans, split=split, family="trig", fit_one=one)


# --------------------------------------------------------------------------- dispatcher
def fit_vector(
    y: np.ndarray | torch.Tensor,
    family: Family = "biexponential",
    **opts: object,
) -> Fit | tuple[Fit, ...]:
    """Fit ``y`` (n,) to ``family`` (one of :data:`FAMILIES`), passing ``opts`` through.

    ``fit_vector(y, "biexponential", t=..., split=64)`` == ``fit_biexponential(y, t=...,
    split=64)``; ``"chebyshev"`` needs ``degree=``, ``"trig"`` needs ``terms=``. Invariant:
    the result is exactly that of the family's own function. Raises ``DataError`` for an
    unknown family or options the family does not take.
    """
    fitters: dict[str, Callable[..., Fit | tuple[Fit, ...]]] = {
        "biexponential": fit_biexponential,
        "chebyshev": fit_chebyshev,
        "trig": fit_trig,
    }
    allowed = {
        "biexponential": {"t", "starts", "split"},
        "chebyshev": {"degree", "x", "split"},
        "trig": {"terms", "split"},
    }
    if family not in fitters:
        raise DataError(f"unknown fit family {family!r}; choose one of {', '.join(FAMILIES)}.")
    unknown = sorted(set(opts) - allowed[family])
    if unknown:
        raise DataError(
            f"the {family} fit takes no option {', '.join(unknown)}; it takes "
            f"{', '.join(sorted(allowed[family]))}."
        )
    required = {"chebyshev": "degree", "trig": "terms"}.get(family)
    if required and required not in opts:
        raise DataError(f"the {family} fit needs {required}=...")
    return fitters[family](y, **opts)
