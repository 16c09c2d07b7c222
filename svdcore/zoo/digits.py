"""SELU classifiers of Pattichis & Pattichis, scaled from MNIST to scikit-learn's 8x8 digits.

R. Pattichis and M. Pattichis ("Understanding neural network systems for image analysis
using vector spaces") study a 1-layer and a 5-layer fully connected SELU network on MNIST
(SELU so that every layer can be inverted). Here the same architectures read the
1797 8x8 images of ``sklearn.datasets.load_digits`` (bundled with scikit-learn, no
download), pixels divided by 16 into [0, 1], flattened row-major to 64 inputs:

* ``digits``: Linear(64, 10) -> SELU (modules ``fc1, act1``);
* ``digits-5layer``: 64 -> 256 -> 256 -> 128 -> 32 -> 10 with SELU after every layer
  (``fc1..fc5, act1..act5``), the paper's output dimensions.

The SELU outputs are the logits of a softmax cross-entropy loss, as in the paper.
The train/test split is a fixed stratified 80/20 split (``SPLIT_SEED``), independent of
the training seed, so every model is scored on the same 359 held-out images.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from svdcore.exceptions import DataError
from svdcore.zoo._training import Progress, TrainOptions, run_training, seeded_fit
from svdcore.zoo._types import TrainReport, ZooEntry

__all__ = [
    "ENTRIES",
    "FIVE_LAYER_DIMS",
    "SPLIT_SEED",
    "accuracy_summary",
    "build_5layer",
    "build_single",
    "fit_classifier",
    "make_data",
    "split_indices",
    "train_5layer",
    "train_single",
]

IMAGE_SHAPE = (8, 8)
N_PIXELS = 64
N_CLASSES = 10
FIVE_LAYER_DIMS = (64, 256, 256, 128, 32, 10)
SPLIT_SEED = 0
"""Seed of the fixed stratified train/test split (never the training seed)."""
TEST_FRACTION = 0.2
SPLITS = ("train", "test", "all")

SINGLE_DEFAULTS = TrainOptions(epochs=100, batch_size=32, lr=0.05)
FIVE_DEFAULTS = TrainOptions(epochs=50, batch_size=32, lr=0.01)
MOMENTUM = 0.9


def build_single() -> nn.Sequential:
    """The 1-layer FCNN: Linear(64, 10) -> SELU. Input ``(N, 64)``, output ``(N, 10)``."""
    module = nn.Sequential(OrderedDict(fc1=nn.Linear(N_PIXELS, N_CLASSES), act1=nn.SELU()))
    return module.eval()


def build_5layer() -> nn.Sequential:
    """The 5-layer FCNN 64 -> 256 -> 256 -> 128 -> 32 -> 10, SELU after every layer.

    Input ``(N, 64)``, output ``(N, 10)``; modules ``fc1, act1, ..., fc5, act5``.
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    dims = FIVE_LAYER_DIMS
    for i in range(len(dims) - 1):
        layers[f"fc{i + 1}"] = nn.Linear(dims[i], dims[i + 1])
        layers[f"act{i + 1}"] = nn.SELU()
    return nn.Sequential(layers).eval()


@lru_cache(maxsize=1)
def _dataset() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


@lru_cache(maxsize=1)
def split_indices() -> tuple[np.ndarray, np.ndarray]:
    """Indices (into ``load_digits()``) of the fixed stratified split: ``(train, test)``.

    For every class, ``round(0.2 * count)`` images chosen by
    ``np.random.default_rng(SPLIT_SEED)`` go to test; both index arrays are sorted.
    1438 train and 359 test images.
    """
    _, y = _dataset()
    rng = np.random.default_rng(SPLIT_SEED)
    test: list[np.ndarray] = []
    for c in range(N_CLASSES):
        members = rng.permutation(np.flatnonzero(y == c))
        test.append(members[: round(TEST_FRACTION * len(members))])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
    train_idx.setflags(write=False)
    test_idx.setflags(write=False)
    return train_idx, test_idx


def make_data(
    *, n: int | None = None, seed: int = 0, split: str = "test"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits images and labels: ``x`` float32 ``(n, 64)`` in [0, 1], ``y`` int64 ``(n,)``.

    ``split`` is "train", "test" or "all" (the fixed stratified split, see
    ``split_indices``). ``n=None`` returns the whole split in dataset order; a smaller
    ``n`` returns a subset drawn without replacement by ``default_rng(seed)``, in
    dataset order. Reshape ``x`` to ``(n, 8, 8)`` to see images.
    """
    x, y = _dataset()
    if split == "all":
        idx = np.arange(len(y))
    elif split in ("train", "test"):
        idx = split_indices()[0 if split == "train" else 1]
    else:
        raise DataError(f"unknown digits split {split!r}; use one of {', '.join(SPLITS)}")
    if n is not None:
        if not 1 <= n <= len(idx):
            raise DataError(f"n must be between 1 and {len(idx)} for split {split!r}, got {n}")
        idx = np.sort(np.random.default_rng(seed).choice(idx, size=n, replace=False))
    return torch.from_numpy(x[idx].copy()), torch.from_numpy(y[idx].copy())


def _accuracy(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((module(x).argmax(dim=1) == y).double().mean())


def fit_classifier(
    builder: Callable[[], nn.Module],
    data: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    *,
    options: TrainOptions,
    optimizer: Callable[[nn.Module], torch.optim.Optimizer],
    progress: Progress,
) -> tuple[nn.Module, dict[str, float]]:
    """Train ``builder()`` on ``data(split="train")`` with cross-entropy (shared with
    ``digits-cnn``), seed, epochs and batch size from ``options``; returns the module and
    its ``test_accuracy``, ``train_accuracy`` and ``fc1_condition_number``. Call it under
    :func:`~svdcore.zoo._training.threads`."""
    x, y = data(split="train")
    xt, yt = data(split="test")
    module = seeded_fit(
        builder,
        x,
        y,
        options=options,
        loss_fn=nn.functional.cross_entropy,
        optimizer=optimizer,
        evaluate=lambda m: {"test_accuracy": _accuracy(m, xt, yt)},
        progress=progress,
    )
    s = torch.linalg.svdvals(module.fc1.weight.detach().double())
    metrics = {
        "test_accuracy": _accuracy(module, xt, yt),
        "train_accuracy": _accuracy(module, x, y),
        "fc1_condition_number": float(s[0] / s[-1]),
    }
    return module, metrics


def accuracy_summary(metrics: dict[str, float]) -> str:
    """The closing progress line of a digits classifier run."""
    return f"test accuracy {metrics['test_accuracy']:.4f}"


def _train(
    name: str,
    builder: Callable[[], nn.Module],
    opts: TrainOptions,
    *,
    out: Path,
    progress: Progress,
) -> TrainReport:
    """The digits FCNN recipe of :func:`train_single` and :func:`train_5layer`."""
    recipe = {
        "optimizer": "SGD",
        "momentum": MOMENTUM,
        "loss": "cross-entropy on the SELU outputs",
        "split": f"stratified {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%}, seed {SPLIT_SEED}",
    }

    def body() -> tuple[nn.Module, dict[str, float], str]:
        module, metrics = fit_classifier(
            builder,
            make_data,
            options=opts,
            optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=opts.lr, momentum=MOMENTUM),
            progress=progress,
        )
        return module, metrics, accuracy_summary(metrics)

    return run_training(name, out=out, options=opts, recipe=recipe, progress=progress, body=body)


def train_single(*, out: Path, progress: Progress = None, **options: Any) -> TrainReport:
    """Train the 1-layer digits FCNN and write its weights to ``out`` (safetensors + JSON).

    ``options`` replace fields of :data:`SINGLE_DEFAULTS` (``seed`` 0, ``epochs``,
    ``batch_size``, ``lr``, ``num_threads`` 1).
    SGD with momentum 0.9 (the paper's optimizer; its lr 1e-3 x 20 epochs suits 60000
    MNIST images, the 1438 digits training images need lr 0.05 x 100 epochs), minibatches
    of ``batch_size``, cross-entropy. ``metrics``: ``test_accuracy``, ``train_accuracy``,
    ``fc1_condition_number``. About a second on one CPU thread.
    """
    opts = SINGLE_DEFAULTS.updated("digits", options)
    return _train("digits", build_single, opts, out=out, progress=progress)


def train_5layer(*, out: Path, progress: Progress = None, **options: Any) -> TrainReport:
    """Train the 5-layer digits FCNN and write its weights to ``out`` (safetensors + JSON).

    ``options`` replace fields of :data:`FIVE_DEFAULTS` (``seed`` 0, ``epochs``,
    ``batch_size``, ``lr``, ``num_threads`` 1).
    SGD with momentum 0.9, lr 0.01, 50 epochs of minibatches of 32, cross-entropy.
    ``metrics``: ``test_accuracy``, ``train_accuracy``, ``fc1_condition_number``.
    A few seconds on one CPU thread.
    """
    opts = FIVE_DEFAULTS.updated("digits-5layer", options)
    return _train("digits-5layer", build_5layer, opts, out=out, progress=progress)


_SINGLE_DESCRIPTION = (
    "The 1-layer fully connected SELU classifier of Pattichis & Pattichis (Linear(64, 10) "
    "-> SELU), trained on scikit-learn's 8x8 handwritten digits instead of MNIST; pixels "
    "scaled to [0, 1]. Each of the 10 rows of W is an 8x8 template. What to look for: the "
    "signal space sigma_i v_i (row space of W, 10 images ordered by singular value), the "
    "residual (null-space) images of the class averages, and inputs reconstructed "
    "through the invertible SELU with the pseudo-inverse. The paper reports a condition "
    "number of 7.22 for W on MNIST; for these shipped weights it is 13.8 "
    "(test accuracy 0.953 on the 359 held-out digits)."
)

_FIVE_DESCRIPTION = (
    "The 5-layer fully connected SELU classifier of Pattichis & Pattichis with the "
    "paper's output dimensions 256, 256, 128, 32, 10, trained on scikit-learn's 8x8 "
    "digits (pixels in [0, 1]). SELU after every layer keeps the network invertible, so "
    "ideal inputs for a class can be computed layer by layer with pseudo-inverses; "
    "compare signal spaces and condition numbers across depth. Test accuracy of the "
    "shipped weights: 0.967 on the 359 held-out digits (the 1-layer net: 0.953)."
)


_SINGLE_ENTRY = ZooEntry(
    name="digits",
    title="Digits, 1-layer SELU (Pattichis & Pattichis)",
    description=_SINGLE_DESCRIPTION,
    input_shape=(N_PIXELS,),
    image_shape=IMAGE_SHAPE,
    build=build_single,
    make_data=make_data,
    train=train_single,
)

ENTRIES = (
    _SINGLE_ENTRY,
    replace(
        _SINGLE_ENTRY,
        name="digits-5layer",
        title="Digits, 5-layer SELU (Pattichis & Pattichis)",
        description=_FIVE_DESCRIPTION,
        build=build_5layer,
        train=train_5layer,
    ),
)
