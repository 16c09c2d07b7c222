"""Compare two weight matrices, or two checkpoints layer by layer.

For ``W_a``, ``W_b`` of the same shape (m, n) (the same layer of two trainings, e.g. Sule's
(ND, ND) and (ND, Reg) networks):

- the difference ``diff = W_b - W_a``, its Frobenius norm, and that norm relative to
  ``||W_a||_F``;
- both singular spectra (for an overlaid plot);
- the principal angles between the top-k left singular subspaces span(U_a[:, :k]) and
  span(U_b[:, :k]), and between the top-k right ones (Björck & Golub 1973): with orthonormal
  bases Q_a, Q_b, the cosines are the singular values of ``Q_a^T Q_b``; small angles are read
  from the sines, the singular values of ``Q_b - Q_a Q_a^T Q_b``, which keeps them accurate
  near 0 (as ``scipy.linalg.subspace_angles`` does);
- the overlap matrices ``|U_a[:, :k]^T U_b[:, :k]|`` (k, k) and ``|V_a^T V_b|``: entry (i, j)
  is |cos| of the angle between singular vector i of ``W_a`` and j of ``W_b``; a permutation
  matrix means the same vectors in another order, a dense block means a rotation within the
  block (equal or close singular values).

Angles between individual singular vectors are meaningful only where the singular values
are separated; the subspace angles need only a gap between s_k and s_{k+1}.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ._validate import as_matrix, count
from .exceptions import DataError, LayerError
from .network import LayerInfo, Network
from .spectrum import svd

__all__ = [
    "LayerComparison",
    "NetworkComparison",
    "compare_layers",
    "compare_networks",
    "subspace_angles",
]


@dataclass(frozen=True, eq=False)
class LayerComparison:
    """Two matrices ``W_a``, ``W_b`` of shape (m, n) side by side; ``k`` subspace dimension.

    ``diff`` (m, n) = ``W_b - W_a`` (dtype of the inputs); ``diff_fro = ||diff||_F``;
    ``rel_diff = diff_fro / ||W_a||_F`` (0 when both are zero, inf when only W_a is);
    ``spectra_a``, ``spectra_b`` (min(m, n),) descending float64; ``left_angles``,
    ``right_angles`` (k,) principal angles in radians, ascending, in [0, pi/2];
    ``left_overlap`` (k, k) = ``|U_a^T U_b|``, ``right_overlap`` (k, k) = ``|V_a^T V_b|``.
    """

    diff: np.ndarray
    diff_fro: float
    rel_diff: float
    spectra_a: np.ndarray
    spectra_b: np.ndarray
    left_angles: np.ndarray
    right_angles: np.ndarray
    left_overlap: np.ndarray
    right_overlap: np.ndarray
    k: int

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.diff.shape[0]), int(self.diff.shape[1]))


def _as_basis(A: torch.Tensor | np.ndarray, what: str) -> torch.Tensor:
    M = as_matrix(A, what=what, dtype=torch.float64)
    if M.shape[1] > M.shape[0]:
        raise DataError(
            f"{what} has {M.shape[1]} columns but vectors of length {M.shape[0]}; a basis of "
            "a subspace has at most as many columns as rows (pass vectors as columns)."
        )
    Q, _ = torch.linalg.qr(M)
    return Q


def subspace_angles(A: torch.Tensor | np.ndarray, B: torch.Tensor | np.ndarray) -> np.ndarray:
    """Principal angles (radians, ascending) between span(A) and span(B).

    ``A`` (n, p) and ``B`` (n, q) hold spanning vectors as columns (full column rank);
    returns ``min(p, q)`` angles in [0, pi/2]. Cosines are the singular values of
    ``Q_a^T Q_b``; angles with cos^2 > 1/2 come from the sines (singular values of the part of
    the smaller basis orthogonal to the larger), accurate near 0. Invariant (checked in
    tests): equals ``numpy.sort(scipy.linalg.subspace_angles(A, B))``; 0 for span(A) = span(B).

    Raises ``DataError`` for non-2-D, empty or non-finite input, different row counts, or a
    basis with more columns than rows.
    """
    Qa = _as_basis(A, "first basis A")
    Qb = _as_basis(B, "second basis B")
    if Qa.shape[0] != Qb.shape[0]:
        raise DataError(
            f"subspaces live in different spaces: A has vectors of length {Qa.shape[0]}, "
            f"B of length {Qb.shape[0]}."
        )
    if Qa.shape[1] < Qb.shape[1]:
        Qa, Qb = Qb, Qa
    cross = Qa.mT @ Qb  # (p, q) with p >= q
    cos = torch.linalg.svdvals(cross).clamp(0.0, 1.0).numpy()  # descending -> angles ascending
    sin = torch.linalg.svdvals(Qb - Qa @ cross).clamp(0.0, 1.0).numpy()[::-1]  # ascending
    small = cos**2 > 0.5
    angles = np.where(small, np.arcsin(sin), np.arccos(cos))
    return np.sort(angles)


def _norm(M: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(M.double()))


def compare_layers(
    W_a: torch.Tensor | np.ndarray,
    W_b: torch.Tensor | np.ndarray,
    *,
    k: int = 8,
    rank: int | None = None,
) -> LayerComparison:
    """Compare ``W_a`` and ``W_b`` of the same shape (m, n); top-k singular subspaces.

    ``k`` is clipped to ``min(m, n)``. Singular vectors come from one thin
    :func:`svdcore.svd` per matrix (float64, deterministic signs). ``rank``: compute only
    the top ``rank`` (>= k) singular triplets of each matrix (``svdcore.svd(k=rank)``, the
    randomized method for large matrices), for layers too large for a full SVD; the spectra
    then hold ``rank`` values. Invariant (checked in tests): a matrix against itself gives
    ``diff == 0``, all angles 0 and identity overlaps; ``diff_fro == ||W_b - W_a||_F``.

    Raises ``DataError`` naming both shapes when they differ, and for non-2-D, empty or
    non-finite input or a bad ``k`` or ``rank``.
    """
    A = as_matrix(W_a, what="first matrix W_a")
    B = as_matrix(W_b, what="second matrix W_b")
    if A.shape != B.shape:
        raise DataError(
            f"cannot compare matrices of different shapes: W_a is {tuple(A.shape)}, W_b is "
            f"{tuple(B.shape)}; compare the same layer (same view) of two checkpoints."
        )
    kk = min(count(k, what="k"), min(A.shape))
    if count(rank, what="rank", none=True) is not None:
        rank = min(max(int(rank), kk), min(A.shape))
    dtype = torch.promote_types(A.dtype, B.dtype)
    diff = B.to(dtype) - A.to(dtype)
    diff_fro = _norm(diff)
    norm_a = _norm(A)
    rel = diff_fro / norm_a if norm_a > 0 else (0.0 if diff_fro == 0 else math.inf)
    # one thin (or top-`rank`) SVD each: spectra and top-k vectors
    Ua, Sa, Vha = svd(A, k=rank, precision="float64")
    Ub, Sb, Vhb = svd(B, k=rank, precision="float64")
    sa, sb = Sa.numpy(), Sb.numpy()
    Ua, Vha, Ub, Vhb = Ua[:, :kk], Vha[:kk], Ub[:, :kk], Vhb[:kk]
    return LayerComparison(
        diff=diff.numpy(),
        diff_fro=diff_fro,
        rel_diff=rel,
        spectra_a=sa,
        spectra_b=sb,
        left_angles=subspace_angles(Ua, Ub),
        right_angles=subspace_angles(Vha.mT, Vhb.mT),
        left_overlap=(Ua.mT @ Ub).abs().numpy(),
        right_overlap=(Vha @ Vhb.mT).abs().numpy(),
        k=kk,
    )


@dataclass(frozen=True, eq=False)
class NetworkComparison:
    """Layer-by-layer comparison of two networks.

    ``layers``: name -> :class:`LayerComparison` for the layers both share with equal matrix
    shapes (in ``net_a``'s order); ``shape_mismatch``: name -> (shape_a, shape_b) of the
    matrix views; ``only_a`` / ``only_b``: names present in one network only; ``skipped``:
    name -> reason (a layer that cannot be viewed as a matrix, or lacks the view).
    """

    name_a: str
    name_b: str
    layers: dict[str, LayerComparison]
    shape_mismatch: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """One row per layer name of either network (CSV-ready): rows, cols, diff_fro,
        rel_diff, the largest left/right principal angle in degrees, and a ``note`` for the
        layers not compared."""
        rows: list[dict[str, object]] = []
        for name, c in self.layers.items():
            rows.append(
                {
                    "name": name,
                    "rows": c.shape[0],
                    "cols": c.shape[1],
                    "k": c.k,
                    "diff_fro": c.diff_fro,
                    "rel_diff": c.rel_diff,
                    "max_left_angle_deg": float(np.degrees(c.left_angles.max())),
                    "max_right_angle_deg": float(np.degrees(c.right_angles.max())),
                    "note": "",
                }
            )
        for name, (sa, sb) in self.shape_mismatch.items():
            rows.append({"name": name, "note": f"shapes differ: {sa} vs {sb}"})
        for name in self.only_a:
            rows.append({"name": name, "note": f"only in {self.name_a}"})
        for name in self.only_b:
            rows.append({"name": name, "note": f"only in {self.name_b}"})
        for name, reason in self.skipped.items():
            rows.append({"name": name, "note": reason})
        columns = [
            "name",
            "rows",
            "cols",
            "k",
            "diff_fro",
            "rel_diff",
            "max_left_angle_deg",
            "max_right_angle_deg",
            "note",
        ]
        df = pd.DataFrame(rows, columns=columns)
        for col in ("rows", "cols", "k"):
            df[col] = df[col].astype("Int64")
        return df


def compare_networks(
    net_a: Network,
    net_b: Network,
    *,
    k: int = 8,
    view: str = "default",
    names: Sequence[str] | None = None,
) -> NetworkComparison:
    """Compare every layer the two networks share (by name) whose matrix views match in shape.

    ``view``: the matrix view to compare (``"default"``, or ``"kernels"`` for convolutions;
    layers without it are skipped with a reason). ``names``: restrict to these layer names.
    Layers whose shapes differ, or that exist in one network only, are listed, not compared.
    Invariant (checked in tests): a network against itself has every angle 0 and
    ``diff_fro == 0`` for every viewable layer.

    Raises ``DataError`` if either argument is not a Network or ``k`` is bad; ``LayerError``
    for a name in ``names`` that neither network has.
    """
    for what, net in (("net_a", net_a), ("net_b", net_b)):
        if not isinstance(net, Network):
            raise DataError(f"{what} must be a svdcore Network, got {type(net).__name__}.")
    count(k, what="k")
    a_names = [layer.name for layer in net_a.layers]
    b_names = [layer.name for layer in net_b.layers]
    b_set, a_set = set(b_names), set(a_names)
    wanted = None if names is None else list(names)
    if wanted is not None:
        missing = [n for n in wanted if n not in a_set and n not in b_set]
        if missing:
            raise LayerError(
                f"neither {net_a.name} nor {net_b.name} has a layer named {missing[0]!r}."
            )
        a_names = [n for n in a_names if n in wanted]
        b_names = [n for n in b_names if n in wanted]
    only_a = [n for n in a_names if n not in b_set]
    only_b = [n for n in b_names if n not in a_set]
    layers: dict[str, LayerComparison] = {}
    mismatch: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    skipped: dict[str, str] = {}
    for name in a_names:
        if name not in b_set:
            continue
        ia, ib = net_a.layer(name), net_b.layer(name)
        if ia.shape != ib.shape:
            mismatch[name] = (ia.shape, ib.shape)
            continue
        reason = _view_problem(ia, view) or _view_problem(ib, view)
        if reason:
            skipped[name] = reason
            continue
        Wa = net_a.matrix(name, view=view)
        Wb = net_b.matrix(name, view=view)
        if Wa.shape != Wb.shape:  # same tensor shape, different kinds (e.g. transposed conv)
            mismatch[name] = (tuple(Wa.shape), tuple(Wb.shape))
            continue
        layers[name] = compare_layers(Wa, Wb, k=k)
    return NetworkComparison(net_a.name, net_b.name, layers, mismatch, only_a, only_b, skipped)


def _view_problem(info: LayerInfo, view: str) -> str | None:
    if not info.viewable:
        return f"not viewable as a matrix: {info.note}"
    if view != "default" and view not in info.views:
        return f"no {view!r} view ({info.kind}; views: {', '.join(info.views)})"
    return None
