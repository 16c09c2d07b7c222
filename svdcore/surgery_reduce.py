"""Reductions of a spectral surgery (Druc et al., SpecXAI, sections 4.2-4.4): sign-reduced
contributions and their proportions (eqs. 21-22), thresholds, pruning to the top-k
components, and the feature-wise contraction of singular vectors with the input (eq. 23).
Pure functions of the arrays of a :class:`~svdcore.surgery.Surgery`; nothing runs the
network here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from .exceptions import DataError

if TYPE_CHECKING:
    from .surgery import Surgery

__all__ = ["Pruned", "Reduced", "contract", "normalise", "prune", "sign_reduce", "threshold"]


@dataclass(frozen=True)
class Reduced:
    """Sign-reduced contributions (eq. 21) and their proportions (eq. 22).

    ``values`` all of one sign, sum equal to the input's sum; ``lead[i]`` the original
    component whose sign survived in values[i] (the larger in magnitude at each merge);
    ``groups[i]`` every original component merged into it; ``proportions`` = values / sum.
    """

    values: np.ndarray
    lead: np.ndarray
    groups: list[list[int]]
    proportions: np.ndarray
    rounds: int


def sign_reduce(alpha: torch.Tensor | np.ndarray, *, max_rounds: int = 64) -> Reduced:
    """Repeat SpecXAI eq. (21) until all terms share one sign, then normalise (eq. 22).

    Each round splits the terms into positives and negatives, each ordered by decreasing
    magnitude, adds them pairwise (the i-th positive with the i-th negative) and keeps the
    unpaired tail of the longer list. The sum is preserved exactly at every round.
    """
    a = np.asarray(alpha.detach().cpu().numpy() if isinstance(alpha, torch.Tensor) else alpha)
    a = a.astype(np.float64).reshape(-1)
    if a.size == 0 or not np.isfinite(a).all():
        raise DataError("sign_reduce needs a non-empty vector of finite contributions.")
    values = list(a)
    groups = [[i] for i in range(a.size)]
    leads = list(range(a.size))
    rounds = 0
    while any(v > 0 for v in values) and any(v < 0 for v in values):
        if rounds >= max_rounds:
            break
        pos = sorted((i for i, v in enumerate(values) if v > 0), key=lambda i: -values[i])
        neg = sorted((i for i, v in enumerate(values) if v < 0), key=lambda i: values[i])
        zero = [i for i, v in enumerate(values) if v == 0]
        new_v, new_g, new_l = [], [], []
        for p, q in zip(pos, neg, strict=False):
            new_v.append(values[p] + values[q])
            new_g.append(groups[p] + groups[q])
            new_l.append(leads[p] if values[p] >= -values[q] else leads[q])
        longer = pos if len(pos) > len(neg) else neg
        for i in longer[min(len(pos), len(neg)) :] + zero:
            new_v.append(values[i])
            new_g.append(groups[i])
            new_l.append(leads[i])
        values, groups, leads = new_v, new_g, new_l
        rounds += 1
    vals = np.asarray(values)
    order = np.argsort(-np.abs(vals), kind="stable")
    vals = vals[order]
    total = vals.sum()
    props = vals / total if total != 0 else np.zeros_like(vals)
    return Reduced(
        values=vals,
        lead=np.asarray(leads)[order],
        groups=[groups[i] for i in order],
        proportions=props,
        rounds=rounds,
    )


def normalise(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """Eq. (22): values / sum(values); for same-sign values these are proportions summing to 1."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    total = v.sum()
    if total == 0:
        raise DataError("the contributions sum to zero: there are no proportions to take.")
    return v / total


def threshold(
    alpha: torch.Tensor | np.ndarray,
    *,
    magnitude: float | None = None,
    quantile: float | None = None,
) -> np.ndarray:
    """Mask of the components kept: |alpha| >= magnitude, or >= that quantile of |alpha|."""
    a = np.abs(np.asarray(alpha, dtype=np.float64).reshape(-1))
    if (magnitude is None) == (quantile is None):
        raise DataError("give exactly one of magnitude= or quantile=.")
    if quantile is not None:
        if not 0 <= quantile <= 1:
            raise DataError(f"quantile must lie in [0, 1], got {quantile}.")
        return a >= np.quantile(a, quantile)
    return a >= float(magnitude)


@dataclass(frozen=True)
class Pruned:
    """The output with only the top-k components (by |alpha[output, k]|) kept."""

    kept: np.ndarray
    y: np.ndarray
    y_pruned: np.ndarray
    change: np.ndarray
    relative_change: float


def prune(surgery: Surgery, k: int, *, output: int | None = None) -> Pruned:
    """Keep the k components contributing most to ``output`` (|alpha[output, :]|), drop the rest.

    y_pruned = sum_{kept} alpha[:, k] + bypass + bias (a top-k surgery's rest-of-spectrum
    term is dropped with the components not kept); reports y - y_pruned and
    ||y - y_pruned|| / ||y||. Invariant: k = r of an exact surgery reproduces y.
    """
    j = surgery.output if output is None else output
    r = surgery.alpha.shape[1]
    if j is None:
        raise DataError("prune needs the output index (output=j) to rank the components.")
    if not 0 <= int(k) <= r:
        raise DataError(f"k must lie in [0, {r}], got {k}.")
    alpha = surgery.alpha.detach().cpu().numpy()
    order = np.argsort(-np.abs(alpha[int(j)]), kind="stable")
    kept = np.sort(order[: int(k)])
    y = surgery.y.detach().cpu().numpy()
    rest = (surgery.bypass + surgery.bias).detach().cpu().numpy()
    y_pruned = alpha[:, kept].sum(1) + rest
    change = y - y_pruned
    norm = float(np.linalg.norm(y))
    return Pruned(kept, y, y_pruned, change, float(np.linalg.norm(change)) / norm if norm else 0.0)


def contract(
    vectors: torch.Tensor | np.ndarray, x: torch.Tensor | np.ndarray, *, input_shape: Sequence[int]
) -> np.ndarray:
    """Feature-wise contraction (eq. 23): c^k_hw = sum_c phi^k_chw x_chw.

    ``vectors`` (M, K) columns phi^k (or one vector (M,)); ``x`` (M,) or of ``input_shape``
    (C, *spatial), channels first as in torch. Returns (K, *spatial); for inputs without a
    channel axis (1-D signals or (H, W) images) the elementwise product phi ⊙ x.
    """
    shape = tuple(int(s) for s in input_shape)
    V = np.asarray(vectors, dtype=np.float64)
    if V.ndim == 1:
        V = V[:, None]
    xv = np.asarray(x, dtype=np.float64).reshape(-1)
    m = int(np.prod(shape))
    if V.shape[0] != m or xv.size != m:
        raise DataError(
            f"contract needs vectors with {m} rows (input shape {shape}) and an input of {m} "
            f"values; got {V.shape[0]} and {xv.size}."
        )
    prod = V.T * xv[None, :]  # (K, M)
    if len(shape) >= 3:
        return prod.reshape(-1, *shape).sum(axis=1)
    return prod.reshape(-1, *shape)
