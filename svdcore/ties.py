"""Near-ties between adjacent singular values: where single singular vectors are unstable.

A perturbation E of W rotates its singular vectors u_i, v_i by an angle up to about
||E||_2 / gap_i, gap_i the distance from s_i to the nearest other singular value (Wedin's
sin-theta theorem, 1972). Where two or more adjacent values nearly tie, each single vector
of the group is therefore not determined by the weights (another training, a rounding of
the stored dtype, turns them into each other); only the subspace they span is, and that
subspace is as stable as its separation from the values around the group.
:func:`near_ties` finds such groups: maximal runs i..j-1 whose adjacent relative gaps
(s_l - s_{l+1}) / s_l are all at most ``rtol``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._validate import count
from .exceptions import DataError

__all__ = ["TIE_RTOL", "TieGroup", "near_ties"]

TIE_RTOL = 0.01  # adjacent singular values within 1 % of each other tie


@dataclass(frozen=True)
class TieGroup:
    """Singular values ``start`` .. ``stop - 1`` (0-based, descending order) nearly tie:
    ``gap`` the largest relative gap inside the group (<= rtol); ``separation`` the relative
    gap to the nearest value outside it (inf where there is none), which bounds how well the
    group's shared subspace is determined."""

    start: int
    stop: int
    gap: float
    separation: float

    @property
    def size(self) -> int:
        return self.stop - self.start

    def label(self) -> str:
        """1-based, as the page numbers vectors: "σ3–σ5"."""
        return f"σ{self.start + 1}–σ{self.stop}"


def near_ties(
    singular_values: np.ndarray | torch.Tensor,
    *,
    rtol: float = TIE_RTOL,
    top: int | None = None,
) -> list[TieGroup]:
    """The groups of nearly tied adjacent singular values that start among the ``top``
    largest (None: all) positive ones (a group is followed to its end); see the module
    docstring. ``singular_values`` descending (as every svdcore spectrum returns them).
    Invariant (checked in tests): every adjacent pair with a relative gap <= rtol is inside
    one group, and no group holds a pair above it.

    Raises ``DataError`` for non-1-D, non-finite, negative or unsorted values, or a bad
    ``rtol`` / ``top``.
    """
    s = singular_values
    if isinstance(s, torch.Tensor):
        s = s.detach().cpu().double().numpy()
    s = np.asarray(s, dtype=np.float64)
    if s.ndim != 1 or not np.isfinite(s).all() or (s < 0).any():
        raise DataError("singular values must be a 1-D array of finite values >= 0.")
    if (np.diff(s) > 0).any():
        raise DataError("singular values must be in descending order.")
    if not (isinstance(rtol, int | float) and 0 <= rtol < 1 and math.isfinite(rtol)):
        raise DataError(f"rtol must be a number in [0, 1), got {rtol!r}.")
    top = count(top, what="top", none=True)
    s = s[s > 0]
    if s.size < 2:
        return []
    rel = (s[:-1] - s[1:]) / s[:-1]  # rel[i]: between s_i and s_{i+1}
    tied = rel <= rtol
    reach = tied.size if top is None else min(tied.size, max(top - 1, 0))
    groups: list[TieGroup] = []
    i = 0
    while i < reach:  # groups that start among the top values, followed to their end
        if not tied[i]:
            i += 1
            continue
        start = i
        while i < tied.size and tied[i]:
            i += 1
        stop = i + 1  # values start..i tie
        before = rel[start - 1] if start > 0 else math.inf
        after = rel[stop - 1] if stop - 1 < rel.size else math.inf
        groups.append(
            TieGroup(
                start=start,
                stop=stop,
                gap=float(rel[start : stop - 1].max()),
                separation=float(min(before, after)),
            )
        )
    return groups
