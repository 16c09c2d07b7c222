"""Record types shared by the example zoo: axes, registry entries and training reports.

Kept apart from ``svdcore.zoo.__init__`` so that the per-family modules (``deernet``,
``digits``) can build their entries without importing the package that registers them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from svdcore.network import Axis

__all__ = ["Axis", "TrainReport", "ZooEntry", "make_entry"]


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


@dataclass(frozen=True, eq=False)
class ZooEntry:
    """One built-in example network: its architecture, data, training and shipped weights.

    ``build()`` returns a fresh module (random initial weights) whose layers are named
    ``fc1, act1, fc2, ...``; ``make_data(*, n=..., seed=..., split=...)`` returns a
    deterministic ``(x, y)`` pair with ``x`` of shape ``(n, *input_shape)``;
    ``train(*, out, seed=0, progress=None, ...)`` trains from scratch and writes
    safetensors weights to ``out``.

    Entries are singletons compared and hashed by identity (``eq=False``), so they can key
    caches even though their axes hold arrays.
    """

    name: str
    title: str
    description: str
    input_shape: tuple[int, ...]
    image_shape: tuple[int, int] | None
    input_axis: Axis | None
    output_axis: Axis | None
    weights_file: str
    build: Callable[[], torch.nn.Module]
    make_data: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    train: Callable[..., TrainReport]


def make_entry(
    name: str,
    title: str,
    description: str,
    *,
    input_shape: tuple[int, ...],
    build: Callable[[], torch.nn.Module],
    make_data: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    train: Callable[..., TrainReport],
    image_shape: tuple[int, int] | None = None,
    input_axis: Axis | None = None,
    output_axis: Axis | None = None,
) -> ZooEntry:
    """A :class:`ZooEntry` whose weights file is ``<name>.safetensors``; no axes by default."""
    return ZooEntry(
        name=name,
        title=title,
        description=description,
        input_shape=input_shape,
        image_shape=image_shape,
        input_axis=input_axis,
        output_axis=output_axis,
        weights_file=f"{name}.safetensors",
        build=build,
        make_data=make_data,
        train=train,
    )
