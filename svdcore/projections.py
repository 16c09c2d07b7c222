"""Projections read off a layer's row space, per class and per neuron, and its signal vectors.

Pattichis & Pattichis (see :mod:`svdcore.subspaces` for the four subspaces and the
signal / residual split of one input): the energy a layer removes from each class average
(Fig. 1), the projection ``p = (w.x / w.w) w`` of an input onto each neuron (row) ``w``,
and the signal space drawn as ``sigma_i v_i`` (eq. 4; kernels for convolutions, Fig. 2).
Computed in float64 by default and returned as CPU tensors of that dtype.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

from ._validate import as_matrix, count
from .exceptions import DataError
from .spectrum import rank_from, resolve_rtol, svd
from .subspaces import (
    ArrayLike,
    FourSubspaces,
    Precision,
    _dtype,
    _inputs,
    _matrix,
    _ratio,
    _row_basis,
    _tensor,
)

__all__ = [
    "ClassProjections",
    "NeuronProjection",
    "SignalVectors",
    "class_projections",
    "neuron_projections",
    "signal_vectors",
]

# neuron_projections materialises (N, m, n) values; beyond this it asks for fewer.
_MAX_NEURON_ELEMENTS = 50_000_000


class ClassProjections(NamedTuple):
    """Projections of class averages, one row per class present in ``y``.

    ``labels`` (K,) int64 sorted; ``names`` the class names (``classes[label]`` when given,
    else ``str(label)``); ``counts`` (K,) samples per class; ``means`` (K, *sample_shape)
    the class averages; ``signal``/``residual`` like ``means``; ``energy_ratio`` (K,) the
    energy the layer removes from each class average (Pattichis Fig. 1, last row);
    ``mean_sample_ratio`` (K,) the mean over the class of the per-sample ratios.
    """

    labels: torch.Tensor
    names: list[str]
    counts: torch.Tensor
    means: torch.Tensor
    signal: torch.Tensor
    residual: torch.Tensor
    energy_ratio: torch.Tensor
    mean_sample_ratio: torch.Tensor

    def as_table(self) -> list[dict[str, object]]:
        """One dict per class: label, name, count, energy_removed, mean_sample_energy_removed."""
        return [
            {
                "label": int(self.labels[i]),
                "name": self.names[i],
                "count": int(self.counts[i]),
                "energy_removed": float(self.energy_ratio[i]),
                "mean_sample_energy_removed": float(self.mean_sample_ratio[i]),
            }
            for i in range(len(self.names))
        ]


class NeuronProjection(NamedTuple):
    """Projections of ``x`` onto each neuron (row) ``w_j`` of ``W``.

    One sample x (n,): ``p`` and ``residual`` are (m, n) with ``p[j] = (w_j.x / w_j.w_j) w_j``
    and ``residual[j] = x - p[j]``; a batch (N, n) gives (N, m, n). ``coefficients`` (m,) or
    (N, m) are ``w_j.x / w_j.w_j``; ``energy_ratio`` (m,) or (N, m) is
    ``||residual[j]||^2 / ||x||^2``; ``neurons`` the row indices used. A zero row has a zero
    projection (coefficient 0, residual = x), never NaN.
    Invariant (checked in tests): ``residual[j] . w_j = 0``.
    """

    p: torch.Tensor
    residual: torch.Tensor
    coefficients: torch.Tensor
    energy_ratio: torch.Tensor
    neurons: torch.Tensor


class SignalVectors(NamedTuple):
    """The signal space drawn as ``sigma_i v_i`` (Pattichis eq. 4), strongest first.

    ``vectors`` (k, n): row i is ``sigma_i v_i``; ``singular_values`` (k,) descending;
    ``image_shape``: the kernel shape when a conv weight was given (draw each row as an
    image), else None; ``rank`` the numerical rank of the matrix.
    Invariant: ``||vectors[i]|| = singular_values[i]``.
    """

    vectors: torch.Tensor
    singular_values: torch.Tensor
    image_shape: tuple[int, int] | None
    rank: int


def _labels(y: ArrayLike, n_samples: int) -> torch.Tensor:
    t = _tensor(y, "y")
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.ndim != 1 or t.shape[0] != n_samples:
        raise DataError(
            f"y of shape {tuple(t.shape)} does not fit {n_samples} samples: pass one class "
            f"label per sample, shape ({n_samples},)."
        )
    if t.dtype == torch.bool or t.is_floating_point():
        raise DataError(
            f"class_projections needs integer class labels, got {t.dtype}; these look like "
            "regression targets (per-class averages need classes)."
        )
    if bool((t < 0).any()):
        raise DataError("class labels must be >= 0 (class indices).")
    return t.to(torch.int64)


def class_projections(
    W: ArrayLike | FourSubspaces,
    x: ArrayLike,
    y: ArrayLike,
    *,
    classes: Sequence[str] | None = None,
    rtol: float | None = None,
    precision: Precision = "float64",
) -> ClassProjections:
    """Project the average input of every class and tabulate the energy each loses.

    ``x`` (N, n) (or (N, *s) with prod(s) = n), ``y`` (N,) integer class labels, ``classes``
    optional names indexed by label. Classes are those present in ``y``, sorted. For each:
    the class average, its signal and residual parts, the energy removed from the average,
    and the mean of the per-sample energy ratios of its members.

    Invariant (checked in tests): ``means[k]`` is the average of ``x[y == labels[k]]`` and
    its energy identity holds like :func:`project`'s.

    Raises ``DataError`` for float or negative labels, a length mismatch, or anything
    :func:`project` refuses.
    """
    dtype = _dtype(precision)
    Vr, n = _row_basis(W, rtol=rtol, precision=precision)
    flat, _ = _inputs(x, n, dtype)
    labels_all = _labels(y, flat.shape[0])
    labels, inverse, counts = torch.unique(labels_all, return_inverse=True, return_counts=True)
    K = int(labels.shape[0])
    sums = torch.zeros(K, n, dtype=dtype).index_add_(0, inverse, flat)
    means = sums / counts[:, None].to(dtype)
    signal = (means @ Vr) @ Vr.mT
    residual = means - signal
    per_sample = _ratio(flat - (flat @ Vr) @ Vr.mT, flat)
    mean_ratio = torch.zeros(K, dtype=dtype).index_add_(0, inverse, per_sample)
    mean_ratio = mean_ratio / counts.to(dtype)
    if classes is not None:
        classes = [str(c) for c in classes]
        too_big = [int(c) for c in labels if int(c) >= len(classes)]
        if too_big:
            raise DataError(f"label {too_big[0]} has no name: classes lists {len(classes)} names.")
        names = [classes[int(c)] for c in labels]
    else:
        names = [str(int(c)) for c in labels]
    sample_shape = tuple(_tensor(x, "x").shape[1:]) or (n,)
    if math.prod(sample_shape) != n:
        sample_shape = (n,)
    return ClassProjections(
        labels=labels,
        names=names,
        counts=counts,
        means=means.reshape(K, *sample_shape),
        signal=signal.reshape(K, *sample_shape),
        residual=residual.reshape(K, *sample_shape),
        energy_ratio=_ratio(residual, means),
        mean_sample_ratio=mean_ratio,
    )


def neuron_projections(
    W: ArrayLike,
    x: ArrayLike,
    *,
    neurons: Sequence[int] | None = None,
    precision: Precision = "float64",
) -> NeuronProjection:
    """Project ``x`` onto every neuron (row ``w_j`` of ``W``): ``p_j = (w_j.x / w_j.w_j) w_j``.

    ``W`` (m, n); ``x`` one sample (n,) or a batch (N, n); ``neurons`` restricts to some rows
    (indices). Returns ``p``/``residual`` (m, n) for one sample, (N, m, n) for a batch, with
    ``residual = x - p`` (Pattichis eq. 3, the per-neuron residual images of Fig. 1).

    Invariant (checked in tests): ``residual[..., j, :] . w_j = 0`` and
    ``||x||^2 = ||p_j||^2 + ||residual_j||^2``; zero rows give zero projections, no NaN.

    Raises ``DataError`` for mismatched shapes, NaN/Inf, bad neuron indices, or a result
    above 50 million values (pass fewer samples or ``neurons``).
    """
    dtype = _dtype(precision)
    A, _ = _matrix(W, precision)
    m, n = A.shape
    if neurons is None:
        idx = torch.arange(m)
    else:
        idx = torch.as_tensor(list(neurons), dtype=torch.int64)
        if idx.ndim != 1 or idx.numel() == 0:
            raise DataError("neurons must be a non-empty list of row indices.")
        if bool((idx < 0).any()) or bool((idx >= m).any()):
            raise DataError(f"neuron indices must lie in [0, {m}), got {idx.tolist()[:10]}.")
    rows = A[idx]
    flat, single = _inputs(x, n, dtype)
    N = flat.shape[0]
    size = N * rows.shape[0] * n
    if size > _MAX_NEURON_ELEMENTS:
        raise DataError(
            f"projecting {N} samples onto {rows.shape[0]} neurons of {n} inputs makes {size:,} "
            "values; pass fewer samples or choose neurons=[...]."
        )
    norms = (rows * rows).sum(dim=1)  # (k,)
    safe = torch.where(norms > 0, norms, torch.ones_like(norms))
    coeff = torch.where(norms > 0, (flat @ rows.mT) / safe, torch.zeros(1, dtype=dtype))  # (N, k)
    p = coeff[:, :, None] * rows[None, :, :]  # (N, k, n)
    residual = flat[:, None, :] - p
    ratio = _ratio(residual, flat[:, None, :].expand_as(residual))
    if single:
        return NeuronProjection(p[0], residual[0], coeff[0], ratio[0], idx)
    return NeuronProjection(p, residual, coeff, ratio, idx)


def signal_vectors(
    W: ArrayLike, *, k: int | None = None, rtol: float | None = None
) -> SignalVectors:
    """The signal space as images: rows ``sigma_i v_i`` of the SVD ``W = U S V^T``.

    ``W`` (m, n) a matrix, or a convolution weight (out, in, *kernel) (rank >= 3), which is
    taken in the kernels view (out * in, prod(kernel)): one row per kernel, so each signal
    vector is a kernel of shape ``image_shape`` (Pattichis Fig. 2). ``k=None`` returns the
    ``r`` vectors of the numerical rank (tolerance as :func:`subspaces`); an integer ``k``
    returns the top ``min(k, min(m, n))`` (via :func:`svdcore.spectrum.svd`, randomized for
    small ``k`` of very large matrices). Computed in float64.

    Invariant (checked in tests): ``||vectors[i]|| = singular_values[i]`` and the rows are
    mutually orthogonal.
    """
    t = _tensor(W, "W")
    image_shape: tuple[int, int] | None = None
    if t.ndim >= 3:
        kernel = tuple(int(s) for s in t.shape[2:])
        if len(kernel) == 2:
            image_shape = (kernel[0], kernel[1])
        t = t.reshape(t.shape[0] * t.shape[1], math.prod(kernel))
    A = as_matrix(t, what="W")
    eps_dtype = A.dtype
    A = A.to(torch.float64)
    tol = resolve_rtol(rtol, tuple(A.shape), eps_dtype)
    count(k, what="k", none=True)
    S_all = torch.linalg.svdvals(A)
    r = rank_from(S_all, tol)
    res = svd(A, k=r if k is None else int(k)) if (k is not None or r > 0) else None
    if res is None:  # the zero matrix: no signal space
        return SignalVectors(
            torch.zeros(0, A.shape[1], dtype=torch.float64),
            torch.zeros(0, dtype=torch.float64),
            image_shape,
            0,
        )
    vectors = res.S[:, None] * res.Vh
    return SignalVectors(vectors.contiguous(), res.S, image_shape, r)
