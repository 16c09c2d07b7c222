"""Fits of the Singular vectors view: the top-k singular vectors fitted to a signal model.

`VectorFitService` is built once by `app.services.Services` with what it needs.
Each side (right = input side,
left = output side) is fitted vector by vector with `svdcore.signal_models.fit_vector`, part
by part where the vector is cut at split points, and cached per side under (matrix content,
truncated SVD or not, side, family, order, split, k, axis content).

Split points: given by the user ("64" or "32, 64, 96"), or "auto": the indices where the
side's physical axis restarts (its values decrease; ILR's first layer takes two 64-point
decays side by side, each with time 0-800 ms, so auto gives 64). No axis, or a monotone one,
gives no split. Abscissa: the axis values (biexponential time t, Chebyshev x) when the side
has an axis of the vector's length that increases within every part, else the index.
Image-shaped sides (e.g. the digits' 8x8 input pixels) are not fitted.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

import svdcore as sc
from app.services.caches import ResultCaches
from app.services.layers import LayerViews
from app.services.registry import ModelRegistry
from svdcore.signal_models import FAMILIES, Fit, fit_vector

__all__ = [
    "DEFAULT_ORDERS",
    "FIT_SIDES",
    "SideFits",
    "VectorFitOptions",
    "VectorFitService",
    "VectorFitsData",
    "auto_split",
    "parse_split",
]

FIT_SIDES = ("right", "left", "both")
DEFAULT_ORDERS: dict[str, int] = {"chebyshev": 6, "trig": 7}  # degree / number of terms
_SIDE_WORDS = {"right": "right (input-side)", "left": "left (output-side)"}


def parse_split(text: str | None) -> tuple[int, ...] | None:
    """Split points from the text box: "" / "auto" -> None (auto), "64" -> (64,),
    "32, 64" -> (32, 64). Raises ``sc.DataError`` for anything that is not whole numbers."""
    raw = (text or "").strip()
    if raw == "" or raw.lower() == "auto":
        return None
    pieces = [p for p in re.split(r"[,;\s]+", raw) if p]
    if not all(re.fullmatch(r"[+-]?\d+", p) for p in pieces):
        raise sc.DataError(
            f"The split '{raw}' is not a list of whole numbers; write split indices separated "
            "by commas (e.g. 64), or leave it empty for auto."
        )
    return tuple(int(p) for p in pieces)


def auto_split(axis_values: np.ndarray | None, n: int) -> tuple[int, ...]:
    """Indices i where the axis restarts (values[i] < values[i - 1]); () when there is no
    axis of length n or it never decreases. Invariant: every index lies in 1..n-1."""
    if axis_values is None:
        return ()
    values = np.asarray(axis_values, dtype=np.float64).reshape(-1)
    if values.size != n or n < 2:
        return ()
    return tuple(int(i) + 1 for i in np.flatnonzero(np.diff(values) < 0))


@dataclass(frozen=True)
class VectorFitOptions:
    """What the fit control asks for. ``family``: one of ``svdcore.signal_models.FAMILIES``;
    ``order``: Chebyshev degree or number of trig terms (None = ``DEFAULT_ORDERS``; unused for
    the biexponential); ``split``: split indices, None = auto; ``side``: right, left or both."""

    family: str
    order: int | None = None
    split: tuple[int, ...] | None = None
    side: str = "right"

    @classmethod
    def from_controls(
        cls, *, family: str, order: float | str | None, split: str | None, side: str | None
    ) -> VectorFitOptions:
        """Options from the raw control values; ``sc.DataError`` with a sentence if bad."""
        if family not in FAMILIES:
            raise sc.DataError(f"Unknown fit family {family!r}; choose one of {FAMILIES}.")
        side = side or "right"
        if side not in FIT_SIDES:
            raise sc.DataError(f"Unknown side {side!r}; choose right, left or both.")
        value: int | None = None
        if family in DEFAULT_ORDERS and order not in (None, ""):
            try:
                number = float(order)
            except (TypeError, ValueError):
                number = float("nan")
            if not number.is_integer():
                raise sc.DataError(f"The order must be a whole number, got {order!r}.")
            value = int(number)
        options = cls(family, value, parse_split(split), side)
        options.validate()
        return options

    @property
    def resolved_order(self) -> int | None:
        """The Chebyshev degree / trig terms used (the default when none is given)."""
        if self.family not in DEFAULT_ORDERS:
            return None
        return DEFAULT_ORDERS[self.family] if self.order is None else self.order

    def validate(self) -> None:
        order = self.resolved_order
        if self.family == "chebyshev" and order is not None and order < 0:
            raise sc.DataError(f"The Chebyshev degree must be 0 or more, got {order}.")
        if self.family == "trig" and order is not None and order < 1:
            raise sc.DataError(f"The number of trigonometric terms must be 1 or more, got {order}.")


@dataclass(frozen=True, eq=False)
class SideFits:
    """The fits of one side's top-k vectors: ``fits[i]`` the parts of vector i (one
    ``svdcore.signal_models.Fit`` per part, in order; None where not fitted). ``split``: the
    split indices used; ``auto``: whether they came from the axis; ``abscissa``: what the
    fit used as x ("time (ms)", "index"); ``note``: why this side was not fitted, else None."""

    side: str
    fits: tuple[tuple[Fit, ...] | None, ...]
    split: tuple[int, ...]
    auto: bool
    abscissa: str
    note: str | None = None


@dataclass(frozen=True, eq=False)
class VectorFitsData:
    """Fits of the sides asked for (None for a side not asked for)."""

    family: str
    order: int | None
    right: SideFits | None
    left: SideFits | None


class VectorFitService:
    """The fit analyses of the page."""

    def __init__(self, registry: ModelRegistry, caches: ResultCaches, layers: LayerViews) -> None:
        self.registry = registry
        self.caches = caches
        self.layers = layers

    def run(
        self,
        model_id: str,
        layer: str,
        view: str,
        k: int,
        options: VectorFitOptions,
        session: str | None,
    ) -> VectorFitsData:
        """Fits of the top-k vectors of ``options.side`` (cached per side); raises
        ``sc.DataError`` naming the side for options the vectors do not allow."""
        options.validate()
        data = self.layers.vectors(model_id, layer, view, k, session)
        matrix_key = self.registry.open(model_id, session).key(layer, view)
        info = data.info
        sides: dict[str, SideFits | None] = {"right": None, "left": None}
        for side in ("right", "left") if options.side == "both" else (options.side,):
            if side == "right":
                vectors, axis, image = data.right, info.col_axis, info.col_image_shape
            else:
                vectors, axis, image = data.left, info.row_axis, info.row_image_shape
            sides[side] = self._fit_side(
                side,
                vectors,
                axis,
                image,
                options,
                base_key=(matrix_key, view, data.truncated),
            )
        return VectorFitsData(options.family, options.resolved_order, sides["right"], sides["left"])

    def _fit_side(
        self,
        side: str,
        vectors: np.ndarray,
        axis: Any,
        image_shape: tuple[int, int] | None,
        options: VectorFitOptions,
        *,
        base_key: tuple[Any, ...],
    ) -> SideFits:
        k, n = vectors.shape
        if image_shape is not None and image_shape[0] * image_shape[1] == n:
            h, w = image_shape
            note = f"the {side} singular vectors are {h}×{w} images: not fitted"
            return SideFits(side, (None,) * k, (), False, "", note)
        values = None if axis is None else np.asarray(axis.values, dtype=np.float64)
        auto = options.split is None
        split = auto_split(values, n) if auto else tuple(options.split or ())
        abscissa, x = "index", None
        if values is not None and values.size == n and _increasing_within(values, split):
            abscissa = f"{axis.label} ({axis.unit})" if axis.unit else str(axis.label)
            x = values
        axis_key = None if x is None else sc.cache.tensor_key(x)
        key = sc.cache.make_key(
            "vector_fits",
            *base_key,
            side,
            options.family,
            options.resolved_order,
            split,
            k,
            axis_key,
        )

        def compute() -> tuple[tuple[Fit, ...], ...]:
            return tuple(
                _fit_parts(v, options.family, options.resolved_order, split, x) for v in vectors
            )

        try:
            fits = self.caches.cache.get_or_compute(key, compute)
        except sc.DataError as err:
            raise sc.DataError(
                f"Cannot fit the {_SIDE_WORDS[side]} singular vectors ({n} entries): {err}"
            ) from err
        return SideFits(side, fits, split, auto, abscissa)


def _increasing_within(values: np.ndarray, split: tuple[int, ...]) -> bool:
    """True when the axis increases strictly inside every part (valid split points only)."""
    edges = [0, *(s for s in split if 0 < s < values.size), values.size]
    return all(np.all(np.diff(values[a:b]) > 0) for a, b in itertools.pairwise(edges))


def _fit_parts(
    vector: np.ndarray,
    family: str,
    order: int | None,
    split: tuple[int, ...],
    x: np.ndarray | None,
) -> tuple[Fit, ...]:
    """One vector through `fit_vector`, always as a tuple of parts."""
    opts: dict[str, object] = {"split": list(split) if split else None}
    if family == "biexponential":
        opts["t"] = x
    elif family == "chebyshev":
        opts.update(degree=order, x=x)
    else:
        opts["terms"] = order
    result = fit_vector(vector, family, **opts)
    return result if isinstance(result, tuple) else (result,)
