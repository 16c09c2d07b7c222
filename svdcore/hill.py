"""The Hill estimator of an ESD's tail exponent, beside the KS-selected power-law fit.

For the N eigenvalues above the threshold in descending order X_(1) >= ... >= X_(N), Hill's
estimator of the tail index from the top k (Hill 1975) is

    gamma_k = (1 / k) sum_{i=1..k} log(X_(i) / X_(k+1)),

and the density exponent of p(lambda) ~ lambda^(-alpha) is alpha_k = 1 + 1 / gamma_k, with
asymptotic standard error (alpha_k - 1) / sqrt(k). It is the maximum-likelihood exponent
of :func:`svdcore.esd.fit_powerlaw` with xmin = X_(k+1), but k is chosen by the user (or
ceil(sqrt(N)), a rate with k -> inf and k / N -> 0 as consistency needs) instead of by the
KS distance, and the whole Hill plot alpha_k against k is returned: a plateau means a
power-law tail, a drift that there is none at those k.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._validate import as_eigenvalues, count
from .exceptions import DataError

__all__ = ["HillEstimate", "hill_estimator"]


@dataclass(frozen=True, eq=False)
class HillEstimate:
    """Hill's ``alpha`` from the top ``k`` eigenvalues (``xmin`` = X_(k+1), the cut), its
    standard error ``sigma``; ``ks`` (1..N-1) and ``alphas`` the Hill plot."""

    alpha: float
    k: int
    xmin: float
    sigma: float
    ks: np.ndarray
    alphas: np.ndarray


def hill_estimator(
    eigenvalues: np.ndarray | torch.Tensor | Sequence[float],
    *,
    k: int | None = None,
    thresh: float = 1e-5,
) -> HillEstimate:
    """Hill's estimate of the ESD tail exponent from its top ``k`` eigenvalues (None:
    ceil(sqrt(N)) of the N above ``thresh``); see the module docstring. Invariant (checked in
    tests): on a Pareto sample of exponent alpha the estimate is within 3 sigma of alpha, and
    it equals ``fit_powerlaw(ev, xmin=X_(k+1))``'s alpha when the tail has no ties.

    Raises ``DataError`` for bad eigenvalues, fewer than 3 above ``thresh``, or ``k`` outside
    1..N-1.
    """
    ev = as_eigenvalues(eigenvalues)
    data = np.sort(ev[ev > thresh])[::-1]
    N = data.size
    if N < 3:
        raise DataError(f"a Hill estimate needs at least 3 eigenvalues above {thresh:g}, got {N}.")
    if k is None:
        k = min(max(1, math.ceil(math.sqrt(N))), N - 1)
    k = count(k, what="k")
    if k > N - 1:
        raise DataError(f"k must be at most {N - 1} (N - 1 of the {N} eigenvalues), got {k}.")
    logs = np.log(data)
    ks = np.arange(1, N)
    gammas = np.cumsum(logs)[:-1] / ks - logs[1:]
    with np.errstate(divide="ignore"):
        alphas = np.where(gammas > 0, 1.0 + 1.0 / np.where(gammas > 0, gammas, 1.0), np.nan)
    alpha = float(alphas[k - 1])
    if not math.isfinite(alpha):
        raise DataError(f"the top {k + 1} eigenvalues are all equal; there is no tail to fit.")
    return HillEstimate(
        alpha=alpha,
        k=k,
        xmin=float(data[k]),
        sigma=(alpha - 1.0) / math.sqrt(k),
        ks=ks,
        alphas=alphas,
    )
