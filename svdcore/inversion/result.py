"""The record of an inversion (:class:`Inversion`) and the checks of targets and labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..exceptions import DataError

__all__ = ["Inversion", "check_labels", "check_target"]


@dataclass(frozen=True, eq=False)
class Inversion:
    """An input ``x`` found for a ``target`` output, and how close it gets.

    ``x``: float64, one sample of the network's input shape; ``output`` (C,) float64, the
    network's output at ``x``; ``target`` (C,) float64; ``distance = ||output - target||``;
    ``start_distance`` the distance at the start (optimisation: of the start image;
    pseudo-inverse: of the layer-by-layer eq. 5 solution, before refinement); ``method``
    "pseudo-inverse" or "optimise"; ``start`` which start the result came from
    ("layer-by-layer", "zeros", "given", "avg-img", "min-img", "avg-min-img");
    ``clipped`` / ``clipped_by_layer`` values clipped into activation ranges by eq. 5;
    ``warnings`` sentences for the user; ``steps`` refinement or optimisation steps taken;
    ``stopped`` True when ``should_stop()`` ended the run early; ``history``: for
    optimisation the distance at the start and after every step, for the pseudo-inverse
    the eq. 5 distance followed by the distance reached from each refinement start.
    Invariant: ``distance <= start_distance``.
    """

    x: torch.Tensor
    output: torch.Tensor
    target: torch.Tensor
    distance: float
    start_distance: float
    method: str
    start: str
    clipped: int = 0
    clipped_by_layer: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    steps: int = 0
    stopped: bool = False
    history: tuple[float, ...] = ()

    @classmethod
    def measured(
        cls, x: torch.Tensor, output: torch.Tensor, target: torch.Tensor, **fields
    ) -> Inversion:
        """An Inversion whose ``distance`` is measured here: ``||output - target||``."""
        distance = float((output - target).norm())
        return cls(x=x, output=output, target=target, distance=distance, **fields)

    @property
    def improvement(self) -> float:
        """``start_distance - distance`` (>= 0)."""
        return self.start_distance - self.distance


def check_target(target: torch.Tensor | np.ndarray, what: str = "target") -> torch.Tensor:
    if isinstance(target, np.ndarray):
        target = torch.from_numpy(np.ascontiguousarray(target))
    if not isinstance(target, torch.Tensor) or target.is_complex():
        raise DataError(f"{what} must be a real torch.Tensor or numpy array.")
    t = target.detach().to(dtype=torch.float64, device="cpu")
    if t.ndim == 2 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 1 or t.numel() == 0:
        raise DataError(
            f"{what} must be one output vector, shape (C,), got {tuple(target.shape)}; "
            "invert one target at a time."
        )
    if not bool(torch.isfinite(t).all()):
        raise DataError(f"{what} contains NaN or infinite values.")
    return t


def check_labels(y: torch.Tensor | np.ndarray, n: int, what: str = "y_train") -> torch.Tensor:
    if isinstance(y, np.ndarray):
        y = torch.from_numpy(np.ascontiguousarray(y))
    if not isinstance(y, torch.Tensor):
        raise DataError(f"{what} must be a tensor or numpy array of class labels.")
    y = y.detach().cpu()
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(
            f"{what} of shape {tuple(y.shape)} does not fit {n} training samples: one class "
            "label per sample is needed."
        )
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise DataError(f"{what} must hold integer class labels, got {y.dtype}.")
    return y.to(torch.int64)
