"""A fine-tuned checkpoint against its base model, layer by layer: how much each weight
matrix moved (ΔW = W_tuned - W_base) and whether its top singular subspaces turned.

For one layer (W_base, W_tuned of the same shape (m, n)):

- ``rel_change = ||ΔW||_F / ||W_base||_F``;
- the spectrum of ΔW (all min(m, n) singular values, float64, from the smaller Gram matrix:
  :func:`svdcore.spectrum.singular_values`): its spectral norm, stable rank
  ``||ΔW||_F^2 / ||ΔW||_2^2``, effective rank (Roy & Vetterli 2007) and ``rank90``, the
  fewest singular directions holding 90 % of ``||ΔW||_F^2``; a low-rank update (LoRA, a few
  steps of fine-tuning) shows as a small rank90 against min(m, n);
- the overlap of the top-k singular subspaces of W_base and W_tuned, left and right:
  ``||U_base^T U_tuned||_F^2 / k``, the mean squared cosine of the k principal angles (1: the
  same subspace, k / m for random ones), and the largest principal angle in degrees
  (:func:`svdcore.compare.subspace_angles`). Top-k vectors come from
  :func:`svdcore.spectrum.svd` with ``k`` (randomized for large layers: about 1e-4 relative
  on flat spectra, so overlaps are right to about that).

Invariants (checked in tests): a model against itself has ΔW = 0, rel_change 0 and both
overlaps 1; rel_change equals ``||ΔW||_F / ||W_base||_F`` computed densely; the ΔW spectrum
of ``B @ A`` added to a base has at most r non-zero values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ._validate import as_matrix, count
from .compare import subspace_angles
from .exceptions import DataError, LayerError
from .network import Network
from .spectrum import _entropy_rank, energy_rank, singular_values, svd

__all__ = [
    "FINETUNE_COLUMNS",
    "LayerDelta",
    "finetune_table",
    "layer_delta",
    "layer_deltas",
    "shared_layers",
]

FINETUNE_COLUMNS = (
    "name",
    "rows",
    "cols",
    "rel_change",
    "delta_fro",
    "delta_sigma1",
    "delta_stable_rank",
    "delta_effective_rank",
    "delta_rank90",
    "k",
    "left_overlap",
    "right_overlap",
    "max_left_angle_deg",
    "max_right_angle_deg",
    "note",
)


@dataclass(frozen=True, eq=False)
class LayerDelta:
    """One layer's change (module docstring); ``delta_singular_values`` descending."""

    name: str
    shape: tuple[int, int]
    rel_change: float
    delta_fro: float
    delta_singular_values: np.ndarray
    k: int
    left_overlap: float
    right_overlap: float
    left_angles: np.ndarray
    right_angles: np.ndarray

    @property
    def delta_sigma1(self) -> float:
        s = self.delta_singular_values
        return float(s[0]) if s.size else 0.0

    @property
    def delta_stable_rank(self) -> float:
        s1 = self.delta_sigma1
        return float(self.delta_fro**2 / s1**2) if s1 > 0 else math.nan

    @property
    def delta_effective_rank(self) -> float:
        s = self.delta_singular_values
        return _entropy_rank(s) if s.sum() > 0 else math.nan

    @property
    def delta_rank90(self) -> int:
        e = self.delta_singular_values**2
        total = float(e.sum())
        return energy_rank(np.cumsum(e) / total, 0.9) if total > 0 else 0


def layer_delta(
    W_base: torch.Tensor | np.ndarray,
    W_tuned: torch.Tensor | np.ndarray,
    *,
    k: int = 8,
    name: str = "",
    device: torch.device | str | None = None,
) -> LayerDelta:
    """The change from ``W_base`` to ``W_tuned`` (same shape; module docstring), float64.

    Raises ``DataError`` naming both shapes when they differ, and for non-2-D, empty or
    non-finite input or a bad ``k``."""
    A = as_matrix(W_base, what="base matrix", dtype=torch.float64)
    B = as_matrix(W_tuned, what="fine-tuned matrix", dtype=torch.float64)
    if A.shape != B.shape:
        raise DataError(
            f"cannot compare {name or 'the layer'}: the base is {tuple(A.shape)}, the "
            f"fine-tune {tuple(B.shape)}; a fine-tune keeps every shape of its base."
        )
    kk = min(count(k, what="k"), min(A.shape))
    D = B - A
    fro = float(torch.linalg.matrix_norm(D))
    base = float(torch.linalg.matrix_norm(A))
    rel = fro / base if base > 0 else (0.0 if fro == 0 else math.inf)
    s = singular_values(D, device=device).numpy() if fro > 0 else np.zeros(min(A.shape))
    Ua, _, Vha = svd(A, k=kk, precision="float64", device=device)
    Ub, _, Vhb = svd(B, k=kk, precision="float64", device=device)
    Ua, Ub, Va, Vb = Ua.cpu(), Ub.cpu(), Vha.cpu().mT, Vhb.cpu().mT
    left = float((Ua.mT @ Ub).square().sum()) / kk
    right = float((Va.mT @ Vb).square().sum()) / kk
    return LayerDelta(
        name=name,
        shape=(int(A.shape[0]), int(A.shape[1])),
        rel_change=rel,
        delta_fro=fro,
        delta_singular_values=s,
        k=kk,
        left_overlap=min(left, 1.0),
        right_overlap=min(right, 1.0),
        left_angles=subspace_angles(Ua, Ub),
        right_angles=subspace_angles(Va, Vb),
    )


def shared_layers(
    base: Network, tuned: Network, *, names: Sequence[str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """The viewable layers both networks share by name with equal matrix shapes (``names``:
    only these), in ``base``'s order, and a note for each other layer (shape changed, only
    in one model, not a matrix). Raises ``LayerError`` for a name neither has."""
    for what, net in (("base", base), ("fine-tune", tuned)):
        if not isinstance(net, Network):
            raise DataError(f"the {what} must be a svdcore Network, got {type(net).__name__}.")
    b_layers = {layer.name: layer for layer in tuned.layers}
    wanted = None if names is None else set(names)
    if wanted is not None:
        known = {layer.name for layer in base.layers} | set(b_layers)
        missing = sorted(wanted - known)
        if missing:
            raise LayerError(f"neither model has a layer named {missing[0]!r}.")
    notes: dict[str, str] = {}
    todo = []
    for info in base.layers:
        if wanted is not None and info.name not in wanted:
            continue
        other = b_layers.get(info.name)
        if other is None:
            notes[info.name] = f"only in {base.name}"
        elif not (info.viewable and other.viewable):
            notes[info.name] = f"not viewable as a matrix: {info.note or other.note}"
        elif info.matrix_shape != other.matrix_shape:
            notes[info.name] = f"shape changed: {info.matrix_shape} -> {other.matrix_shape}"
        else:
            todo.append(info.name)
    base_names = {layer.name for layer in base.layers}
    for name in b_layers:
        if name not in base_names and (wanted is None or name in wanted):
            notes[name] = f"only in {tuned.name}"
    return todo, notes


def layer_deltas(
    base: Network,
    tuned: Network,
    *,
    k: int = 8,
    names: Sequence[str] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[list[LayerDelta], dict[str, str]]:
    """:class:`LayerDelta` of every layer of :func:`shared_layers`, in ``base``'s order,
    and the notes of the others. ``progress(done, total, name)`` after each layer;
    ``should_stop()`` ends the scan early (the rows so far are returned)."""
    todo, notes = shared_layers(base, tuned, names=names)
    rows: list[LayerDelta] = []
    for i, name in enumerate(todo, start=1):
        if should_stop is not None and should_stop():
            break
        rows.append(layer_delta(base.matrix(name), tuned.matrix(name), k=k, name=name))
        if progress is not None:
            progress(i, len(todo), name)
    return rows, notes


def finetune_table(
    base: Network | Sequence[LayerDelta],
    tuned: Network | None = None,
    *,
    k: int = 8,
    notes: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The per-layer fine-tune table (columns :data:`FINETUNE_COLUMNS`), from two networks
    or from rows of :func:`layer_deltas` (with their ``notes``): one row per compared layer,
    then one per layer not compared with its note. CSV-ready."""
    if isinstance(base, Network):
        if not isinstance(tuned, Network):
            raise DataError("finetune_table needs the base and the fine-tuned Network.")
        rows, notes = layer_deltas(base, tuned, k=k)
    else:
        rows = list(base)
    records = [
        {
            "name": r.name,
            "rows": r.shape[0],
            "cols": r.shape[1],
            "rel_change": r.rel_change,
            "delta_fro": r.delta_fro,
            "delta_sigma1": r.delta_sigma1,
            "delta_stable_rank": r.delta_stable_rank,
            "delta_effective_rank": r.delta_effective_rank,
            "delta_rank90": r.delta_rank90,
            "k": r.k,
            "left_overlap": r.left_overlap,
            "right_overlap": r.right_overlap,
            "max_left_angle_deg": float(np.degrees(r.left_angles.max(initial=0.0))),
            "max_right_angle_deg": float(np.degrees(r.right_angles.max(initial=0.0))),
            "note": "",
        }
        for r in rows
    ]
    records += [{"name": name, "note": note} for name, note in (notes or {}).items()]
    df = pd.DataFrame(records, columns=list(FINETUNE_COLUMNS))
    for col in ("rows", "cols", "delta_rank90", "k"):
        df[col] = df[col].astype("Int64")
    return df
