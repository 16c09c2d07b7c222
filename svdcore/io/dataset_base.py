"""The :class:`Dataset` type and the checks that turn arrays into one.

``make_dataset(x, y, name=..., input_shape=...)`` is the one way readers (files, the zoo)
build a Dataset: numeric, finite, float32 inputs reshaped to the model's input shape, and
int64 class labels or float32 targets, one per sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..exceptions import DataError

__all__ = ["Dataset", "make_dataset"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs and optional targets, samples along the first axis.

    ``x`` (N, ...) float32, finite; ``y`` None, (N,) int64 class labels, or (N, ...)
    float32 targets; ``name`` for display; ``classes`` the class names indexed by label
    (image-folder zips and text CSV labels) or None; ``notes`` what the reader skipped or
    changed, one sentence each. Invariant (checked on construction): ``len(y) == len(x)``.
    """

    x: torch.Tensor
    y: torch.Tensor | None
    name: str
    classes: list[str] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor) or self.x.dtype != torch.float32:
            raise DataError("Dataset.x must be a float32 torch.Tensor.")
        if self.x.ndim < 2 or self.x.shape[0] == 0:
            raise DataError(
                f"Dataset.x must have shape (N, ...) with N >= 1, got {tuple(self.x.shape)}."
            )
        if self.y is not None:
            if not isinstance(self.y, torch.Tensor) or self.y.dtype not in (
                torch.int64,
                torch.float32,
            ):
                raise DataError("Dataset.y must be None, an int64 or a float32 tensor.")
            if self.y.ndim == 0 or self.y.shape[0] != self.x.shape[0]:
                raise DataError(
                    f"Dataset has {self.x.shape[0]} inputs but y of shape "
                    f"{tuple(self.y.shape)}: one target per sample is needed."
                )
            if self.y.dtype == torch.int64 and self.y.ndim != 1:
                raise DataError("integer class labels y must be 1-D, one label per sample.")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one input, ``x.shape[1:]``."""
        return tuple(int(s) for s in self.x.shape[1:])

    @property
    def is_classification(self) -> bool:
        """True when ``y`` holds integer class labels."""
        return self.y is not None and self.y.dtype == torch.int64

    def flat(self) -> torch.Tensor:
        """Inputs as (N, prod(sample_shape)), the form the subspace functions take."""
        return self.x.reshape(self.x.shape[0], -1)

    def reshaped(self, input_shape: Sequence[int]) -> Dataset:
        """This dataset with inputs reshaped to (N, *input_shape); ``DataError`` if the
        number of values per sample differs (naming both shapes)."""
        x = _fit_shape(self.x, input_shape)
        return Dataset(x, self.y, self.name, self.classes, self.notes)


# ----------------------------------------------------------------------------- checks
def _fit_shape(x: torch.Tensor, input_shape: Sequence[int] | None) -> torch.Tensor:
    if input_shape is None:
        return x
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise DataError(f"input_shape must be a non-empty shape of positive sizes, got {shape}.")
    if tuple(x.shape[1:]) == shape:
        return x
    sample = tuple(int(s) for s in x.shape[1:])
    if math.prod(sample) != math.prod(shape):
        raise DataError(
            f"the samples have shape {sample} ({math.prod(sample)} values) but the model "
            f"expects inputs of shape {shape} ({math.prod(shape)} values); choose a dataset "
            "made for this model."
        )
    return x.reshape(x.shape[0], *shape)


def _numeric(arr: np.ndarray | torch.Tensor, what: str, source: str) -> np.ndarray:
    if isinstance(arr, torch.Tensor):
        if arr.is_complex():
            raise DataError(f"{source}: {what} is complex ({arr.dtype}); real values are needed.")
        if arr.layout != torch.strided or arr.is_quantized:
            raise DataError(
                f"{source}: {what} is a {str(arr.layout).removeprefix('torch.')} "
                f"{str(arr.dtype).removeprefix('torch.')} tensor; save a dense tensor of numbers."
            )
        arr = arr.detach().cpu()
        if arr.dtype.is_floating_point and arr.dtype not in (torch.float32, torch.float64):
            arr = arr.float()  # bfloat16, float8 ...: no numpy dtype
        try:
            arr = arr.numpy()
        except (TypeError, RuntimeError) as exc:
            raise DataError(
                f"{source}: {what} has dtype {str(arr.dtype).removeprefix('torch.')}, which "
                "svdscope cannot read as numbers; save float32 values."
            ) from exc
    if arr.dtype == np.bool_:
        arr = arr.astype(np.int64)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise DataError(
            f"{source}: {what} must be numeric, got dtype {arr.dtype}; store numbers only."
        )
    return arr


def _finite(arr: np.ndarray, what: str, source: str) -> None:
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(
                f"{source}: {what} contains {int(bad.sum())} NaN or infinite value(s), the "
                f"first at index {first}; clean the data first."
            )


def _as_inputs(
    x: np.ndarray | torch.Tensor, source: str, input_shape: Sequence[int] | None
) -> torch.Tensor:
    arr = _numeric(x, "x", source)
    if arr.size == 0:
        raise DataError(f"{source}: the inputs are empty (shape {arr.shape}); nothing to analyse.")
    if arr.ndim == 0:
        raise DataError(f"{source}: the inputs are a single number; store samples as (N, ...).")
    _finite(arr, "x", source)
    if arr.ndim == 1:
        n = arr.shape[0]
        if input_shape is not None and math.prod(input_shape) == n:
            arr = arr.reshape(1, n)
        elif input_shape is not None and math.prod(input_shape) == 1:
            arr = arr.reshape(n, 1)
        else:
            raise DataError(
                f"{source}: the inputs are 1-D (shape ({n},)); store them as (N, features): "
                f"reshape(-1, 1) if they are {n} samples of one value, reshape(1, -1) if "
                "they are one sample."
            )
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    return _fit_shape(t, input_shape)


def _as_targets(y: np.ndarray | torch.Tensor, n: int, source: str) -> torch.Tensor:
    arr = _numeric(y, "y", source)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 0 or arr.shape[0] != n:
        raise DataError(
            f"{source}: {n} inputs but labels of shape {tuple(arr.shape)}; store one label "
            "(or target) per sample."
        )
    _finite(arr, "y", source)
    if np.issubdtype(arr.dtype, np.integer):
        if arr.ndim != 1:
            raise DataError(
                f"{source}: integer labels must be one per sample, shape ({n},), got "
                f"{tuple(arr.shape)}."
            )
        return torch.from_numpy(arr.astype(np.int64))
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def make_dataset(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor | None,
    *,
    name: str,
    input_shape: Sequence[int] | None,
    classes: list[str] | None = None,
    notes: tuple[str, ...] = (),
) -> Dataset:
    """A checked :class:`Dataset` from arrays ``x`` (N, ...) and ``y`` (None or N targets).

    ``x`` becomes float32 (N, *input_shape) when ``input_shape`` is given; ``y`` int64 class
    labels (integers) or float32 targets. ``name`` names the source in every error. Raises
    ``DataError`` for non-numeric, empty, NaN/Inf or mis-shaped data. Invariant:
    ``len(result.y) == len(result.x)``.
    """
    xt = _as_inputs(x, name, input_shape)
    yt = None if y is None else _as_targets(y, xt.shape[0], name)
    return Dataset(xt, yt, name, classes, notes)
