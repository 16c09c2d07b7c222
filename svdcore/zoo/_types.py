"""Record types shared by the example zoo: axes, registry entries and training reports,
and the data splits of the simulated families.

Kept apart from ``svdcore.zoo.__init__`` so that the per-family modules (``deernet``,
``digits``) can build their entries without importing the package that registers them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from svdcore.exceptions import DataError
from svdcore.network import Axis

__all__ = ["SPLITS", "Axis", "TrainReport", "ZooEntry", "split_index"]

SPLITS = {"train": 0, "test": 1}
"""The data splits of the simulated families (DEER, squares, ILR) and the index of each in
their seed sequences, so that "train" and "test" draw from different streams."""


def split_index(split: str, *, data: str) -> int:
    """The seed-sequence index of ``split`` in :data:`SPLITS`; ``DataError`` naming the
    ``data`` (e.g. "DEER") and the valid splits for anything else."""
    try:
        return SPLITS[split]
    except (KeyError, TypeError):
        raise DataError(
            f"unknown {data} data split {split!r}; use one of {', '.join(SPLITS)}"
        ) from None


@dataclass(frozen=True)
class TrainReport:
    """What one training run produced.

    ``path`` is the safetensors file written; ``seconds`` the wall time of the run;
    ``metrics`` the held-out scores (e.g. ``test_accuracy`` or ``test_mse`` and
    ``baseline_mse``); ``settings`` the exact options used, so the run can be repeated.
    """

    name: str
    path: Path
    seconds: float
    metrics: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False, kw_only=True)
class ZooEntry:
    """One built-in example network: its architecture, data, training and shipped weights.

    ``build()`` returns a fresh module (random initial weights) whose layers are named
    ``fc1, act1, fc2, ...``; ``make_data(*, n=..., seed=..., split=...)`` returns a
    deterministic ``(x, y)`` pair with ``x`` of shape ``(n, *input_shape)``;
    ``train(*, out, seed=0, progress=None, ...)`` trains from scratch and writes
    safetensors weights to ``out``. ``image_shape`` and the axes are None unless given.

    Entries are singletons compared and hashed by identity (``eq=False``), so they can key
    caches even though their axes hold arrays.
    """

    name: str
    title: str
    description: str
    input_shape: tuple[int, ...]
    build: Callable[[], torch.nn.Module]
    make_data: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    train: Callable[..., TrainReport]
    image_shape: tuple[int, int] | None = None
    input_axis: Axis | None = None
    output_axis: Axis | None = None

    @property
    def weights_file(self) -> str:
        """The shipped weights' file name in ``svdcore/zoo/weights``: ``<name>.safetensors``."""
        return f"{self.name}.safetensors"
