"""Inversion for the page (Pattichis & Pattichis, section 2.4): an input whose output is
the *ideal output* of a class, by the pseudo-inverse through invertible activations or by
optimising the input from a training-based start.

`InversionService` is built once by `app.services.Services` with what it needs.
The training data is the
dataset chosen in the sidebar (for an example network: its train split); it needs integer
class labels. Results live in `ResultCaches.shared_cache` (background jobs see it too), keyed
by the network's content, the dataset's content and the normalised options; a cancelled
optimisation is returned but never cached.

Which methods apply (`InversionService.refusals`): the pseudo-inverse only to a chain of
Linear layers and invertible activations (`svdcore.inversion.chain_refusal` says why not);
the optimisation to every network that runs, exported CNNs (.pt2, any fixed batch) included.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

import svdcore as sc
from app.services.base import DataAnalysis
from app.services.jobs import cached_unless_cancelled
from svdcore.inversion import chain_refusal, training_outputs

__all__ = [
    "INVERSION_METHODS",
    "INVERSION_STARTS",
    "PAGE_HINT",
    "InversionData",
    "InversionOptions",
    "InversionService",
]

INVERSION_METHODS = ("pseudo-inverse", "optimise")
INVERSION_STARTS = ("avg-img", "min-img", "avg-min-img")
MAX_STEPS = 100_000
TRAIN_SPLIT = "train"
PAGE_HINT = "On this page, choose the optimisation of the input under Method."


@dataclass(frozen=True)
class InversionOptions:
    """What the Inversion view asks for: the target class, the method, and for the
    optimisation its start, Adam steps, learning rate and whether the input is kept in
    the data's value range (``clamp``)."""

    target: int = 0
    method: str = "pseudo-inverse"
    start: str = "avg-img"
    steps: int = 200
    lr: float = 0.01
    clamp: bool = True

    def validate(self) -> None:
        """Raise sc.DataError with a sentence for an unknown or out-of-range option."""
        if self.method not in INVERSION_METHODS:
            raise sc.DataError(
                f"Unknown method {self.method!r}; choose {' or '.join(INVERSION_METHODS)}."
            )
        if self.target < 0:
            raise sc.DataError("The target class must be 0 or more.")
        if self.method == "optimise":
            if self.start not in INVERSION_STARTS:
                raise sc.DataError(
                    f"Unknown start {self.start!r}; choose one of {', '.join(INVERSION_STARTS)}."
                )
            if not 1 <= self.steps <= MAX_STEPS:
                raise sc.DataError(f"The number of steps must be between 1 and {MAX_STEPS:,}.")
            if not (math.isfinite(self.lr) and 0 < self.lr <= 10):
                raise sc.DataError("The learning rate must be a number in (0, 10].")

    def normalized(self) -> InversionOptions:
        """These options with the settings that cannot change the result reset."""
        if self.method == "pseudo-inverse":
            return replace(self, start="", steps=0, lr=0.0, clamp=False)
        return self


@dataclass(frozen=True, eq=False)
class InversionData:
    """One generated input and how close its output gets to the ideal output (numpy)."""

    options: InversionOptions
    x: np.ndarray  # (n,) float64, the generated input, flattened
    image_shape: tuple[int, int] | None
    input_axis: Any  # sc.Axis or None: curve abscissa for non-image inputs
    output: np.ndarray  # (C,)
    target: np.ndarray  # (C,) the ideal output
    class_names: list[str]
    distance: float
    start_distance: float
    method: str
    start: str
    warnings: tuple[str, ...]
    clipped: int
    steps: int
    stopped: bool
    history: np.ndarray
    bounds: tuple[float, float] | None
    n_train: int
    data_name: str
    channels: int = 1  # an image input of several channels: stacked top to bottom

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.output))


class InversionService(DataAnalysis):
    """The inversion analyses of the page."""

    def training(self, model_id: str, dataset: str | None, session: str | None) -> tuple[Any, Any]:
        """(opened training dataset, class names indexed by label); sc.DataError with a
        sentence when the dataset cannot define ideal outputs (no class labels)."""
        opened = self.datasets.open(model_id, dataset, session, split=TRAIN_SPLIT)
        ds = opened.data
        if not ds.is_classification:
            kind = "no labels" if ds.y is None else "regression targets, not class labels"
            raise sc.DataError(
                f"{ds.name} has {kind}. The ideal output of a class (its largest value for "
                "that class, the smallest for the others) needs training data with integer "
                "class labels; choose such a dataset in the sidebar."
            )
        n = int(ds.y.max()) + 1
        names = list(ds.classes) if ds.classes else [str(i) for i in range(n)]
        return opened, names

    def refusals(self, model_id: str, session: str | None) -> dict[str, str | None]:
        """Method -> None where it applies to the model, else the sentence why not (cached
        by the network's content and name: the sentence names it, and two archives of one
        module, at batch 1 and 8, have one content): the pseudo-inverse needs a chain of
        Linear layers and invertible activations; the optimisation runs on every network
        that runs. Raises sc.ExecutionError for a weights-only network."""
        net = self.registry.open(model_id, session).net
        key = sc.cache.make_key("inversion-refusals", net.content_key(), net.name)

        def compute() -> dict[str, str | None]:
            return {"pseudo-inverse": chain_refusal(net), "optimise": None}

        return self.caches.cache.get_or_compute(key, compute)

    def key(
        self, model_id: str, options: InversionOptions, dataset: str | None, session: str | None
    ) -> str:
        content = self.registry.open(model_id, session).net.content_key()
        opened, _ = self.training(model_id, dataset, session)
        return sc.cache.make_key("inversion", content, opened.key, options.normalized())

    def run(
        self,
        model_id: str,
        options: InversionOptions,
        dataset: str | None,
        session: str | None,
        *,
        compute: bool = True,
        progress: Callable[[int, int, float], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> InversionData | None:
        """The generated input for `options` (cached); with compute=False, None unless it
        is cached. Raises svdcore's errors; the pseudo-inverse of a network that is not an
        invertible chain is a sc.NotInvertibleError (a sc.DataError) suggesting optimisation."""
        options.validate()
        opts = options.normalized()
        net = self.registry.open(model_id, session).net
        opened, names = self.training(model_id, dataset, session)
        if opts.target >= len(names):
            raise sc.DataError(
                f"There is no class {opts.target}: the training data has {len(names)} classes."
            )
        refusal = self.refusals(model_id, session).get(opts.method)
        if refusal:
            raise sc.NotInvertibleError(f"{refusal} {PAGE_HINT}")
        key = self.key(model_id, opts, dataset, session)
        if not compute:
            return self.caches.shared_cache.backend.get(key)
        ds = opened.data

        def run() -> InversionData:
            # the training outputs through the engine (float64, chunked, one sample per
            # row of a fixed-batch archive), once: the ideal output and the starts use them
            outputs = training_outputs(net, ds.x)
            target = sc.ideal_output(outputs, ds.y, opts.target)
            bounds = None
            if opts.method == "pseudo-inverse":
                res = sc.pseudo_inverse_input(net, target)
            else:
                if opts.clamp:
                    low, high = float(ds.x.min()), float(ds.x.max())
                    bounds = (low, high) if low < high else None
                res = sc.optimise_input(
                    net,
                    target,
                    start=opts.start,
                    x_train=ds.x,
                    y_train=ds.y,
                    cls=opts.target,
                    steps=opts.steps,
                    lr=opts.lr,
                    bounds=bounds,
                    progress=progress,
                    should_stop=should_stop,
                    outputs_train=outputs,
                )
            return _to_data(res, opts, net, names, bounds, len(ds), ds.name)

        return cached_unless_cancelled(
            self.caches.shared_cache, key, run, cancelled=lambda data: data.stopped
        )


def _to_data(
    res: Any,
    opts: InversionOptions,
    net: Any,
    names: list[str],
    bounds: tuple[float, float] | None,
    n_train: int,
    data_name: str,
) -> InversionData:
    def arr(t: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(t.detach().to("cpu", torch.float64).numpy()).reshape(-1)

    x = arr(res.x)
    image = net.image_shape if net.image_shape and math.prod(net.image_shape) == x.size else None
    channels = 1
    shape = tuple(net.input_shape or ())
    if image is None and len(shape) >= 2 and math.prod(shape) == x.size:
        # (..., H, W) inputs (an uploaded CNN): the channels stacked, (C * H, W), which is
        # the flat input's own row-major order
        channels = math.prod(shape[:-2])
        image = (channels * shape[-2], shape[-1])
    axis = net.input_axis
    if axis is not None and len(axis.values) != x.size:
        axis = None
    return InversionData(
        options=opts,
        x=x,
        image_shape=tuple(image) if image else None,
        input_axis=axis,
        output=arr(res.output),
        target=arr(res.target),
        class_names=names,
        distance=float(res.distance),
        start_distance=float(res.start_distance),
        method=res.method,
        start=res.start,
        warnings=tuple(res.warnings),
        clipped=int(res.clipped),
        steps=int(res.steps),
        stopped=bool(res.stopped),
        history=np.asarray(res.history, dtype=np.float64),
        bounds=bounds,
        n_train=int(n_train),
        data_name=data_name,
        channels=int(channels),
    )
