"""Training helpers shared by the zoo families: their options, a minibatch loop, a writer.

Every family's ``train(*, out, progress=None, **options)`` reads its options into a frozen
:class:`TrainOptions` (``seed``, ``epochs``, ``batch_size``, ``lr``, ``num_threads``; the
families that simulate their data add ``n_train`` and ``n_test``, :class:`SampledOptions`);
the family's ``DEFAULTS`` is such an instance, and a call replaces some of its fields.

Everything here is deterministic for a given seed on a given machine: the initial weights
come from ``torch.manual_seed(seed)``, minibatch order from a separate ``torch.Generator``,
and training runs on one CPU thread by default (the number of threads changes the order
of floating-point reductions, so it is part of what makes a run repeatable).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any, Self

import torch
from safetensors.torch import save_file

from svdcore.exceptions import DataError
from svdcore.zoo._types import TrainReport

__all__ = [
    "Progress",
    "SampledOptions",
    "TrainOptions",
    "fit",
    "run_training",
    "save_weights",
    "seeded_fit",
    "threads",
]

Progress = Callable[[str], None] | None


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """The options every zoo family's training takes.

    ``seed`` seeds the initial weights and the minibatch order; ``epochs`` passes of
    minibatches of ``batch_size`` at learning rate ``lr``; ``num_threads`` CPU threads for
    the run (None leaves torch's setting alone). A family's ``DEFAULTS`` is an instance
    (of this class or of a subclass that adds the family's own options).
    """

    seed: int = 0
    epochs: int
    batch_size: int
    lr: float
    num_threads: int | None = 1

    def settings(self) -> dict[str, Any]:
        """Every option by name: the part of a run's recorded ``settings`` the caller chose."""
        return dataclasses.asdict(self)

    def updated(self, name: str, options: Mapping[str, Any]) -> Self:
        """These options with the fields named in ``options`` replaced.

        Raises ``DataError`` naming the unknown keys and the accepted ones of ``name``.
        """
        accepted = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise DataError(
                f"unknown training option(s) {', '.join(unknown)} for {name!r}; "
                f"it accepts: {', '.join(sorted(accepted))}"
            )
        return dataclasses.replace(self, **options)


@dataclass(frozen=True, kw_only=True)
class SampledOptions(TrainOptions):
    """:class:`TrainOptions` of a family that simulates its data: ``n_train`` samples to
    train on and ``n_test`` held-out samples to score on."""

    n_train: int
    n_test: int


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` and restore the previous count after.

    ``n=None`` leaves the thread count alone.
    """
    if n is None:
        yield
        return
    if n < 1:
        raise DataError(f"threads must be a positive integer or None, got {n}")
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def fit(
    module: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    epochs: int,
    batch_size: int,
    seed: int,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    evaluate: Callable[[], dict[str, float]] | None = None,
    progress: Progress = None,
    log_every: int = 1,
) -> list[float]:
    """Minibatch training of ``module`` on ``(x, y)`` (leading dimension N) for ``epochs``.

    Each epoch visits a fresh permutation drawn from ``torch.Generator().manual_seed(seed)``;
    the last incomplete batch is kept. ``scheduler`` (if any) steps once per batch.
    ``progress`` receives one line every ``log_every`` epochs (and after the last), with
    the mean training loss and whatever ``evaluate()`` returns. Returns the mean training
    loss of every epoch (length ``epochs``).
    """
    if epochs < 1 or batch_size < 1:
        raise DataError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise DataError(f"x and y need the same non-zero length, got {x.shape[0]} and {y.shape[0]}")
    n = x.shape[0]
    generator = torch.Generator().manual_seed(seed)
    history: list[float] = []
    for epoch in range(1, epochs + 1):
        module.train()
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            loss = loss_fn(module(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / n)
        module.eval()
        if progress is not None and (epoch % log_every == 0 or epoch == epochs):
            line = f"epoch {epoch}/{epochs}  train loss {history[-1]:.5f}"
            if evaluate is not None:
                with torch.no_grad():
                    line += "".join(f"  {k} {v:.5f}" for k, v in evaluate().items())
            progress(line)
    module.eval()
    return history


def save_weights(
    module: torch.nn.Module,
    out: Path,
    *,
    name: str,
    metrics: dict[str, float],
    settings: dict[str, Any],
    seconds: float,
) -> Path:
    """Write ``module.state_dict()`` as float32 safetensors to ``out`` and a JSON sidecar.

    The sidecar ``out.with_suffix(".json")`` records the name, metrics, settings and
    training time (also copied into the safetensors metadata). Both files are written to
    a temporary name first and renamed, so a reader never sees half a file. Returns ``out``.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        k: v.detach().to(device="cpu", dtype=torch.float32).contiguous()
        for k, v in module.state_dict().items()
    }
    record = {
        "name": name,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "settings": settings,
        "seconds": round(float(seconds), 3),
        "torch": torch.__version__,
    }
    metadata = {
        "format": "pt",
        "svdscope_zoo": name,
        "record": json.dumps(record, sort_keys=True),
    }
    tmp = out.with_name(out.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.chmod(tmp, 0o644)  # package data: world-readable like the rest of the tree
    os.replace(tmp, out)
    sidecar = out.with_suffix(".json")
    tmp_json = sidecar.with_name(sidecar.name + ".tmp")
    tmp_json.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp_json, sidecar)
    return out


def seeded_fit(
    builder: Callable[[], torch.nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    options: TrainOptions,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer],
    scheduler: Callable[[torch.optim.Optimizer, int], torch.optim.lr_scheduler.LRScheduler]
    | None = None,
    evaluate: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    progress: Progress = None,
) -> torch.nn.Module:
    """``torch.manual_seed(options.seed)``, build a fresh module and :func:`fit` it; returns it.

    ``options`` gives the seed, the epochs and the batch size (its ``lr`` is the caller's, for
    ``optimizer``); ``optimizer(module)`` makes the optimizer; ``scheduler(optimizer, steps)``
    (if any) the per-batch schedule over all ``steps`` of the run; ``evaluate(module)`` the
    scores logged every tenth of the epochs (``log_every = max(1, epochs // 10)``).
    """
    seed, epochs, batch_size = options.seed, options.epochs, options.batch_size
    torch.manual_seed(seed)
    module = builder()
    opt = optimizer(module)
    steps = epochs * ((x.shape[0] + batch_size - 1) // batch_size)
    fit(
        module,
        x,
        y,
        loss_fn=loss_fn,
        optimizer=opt,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        scheduler=None if scheduler is None else scheduler(opt, steps),
        evaluate=None if evaluate is None else lambda: evaluate(module),
        progress=progress,
        log_every=max(1, epochs // 10),
    )
    return module


def run_training(
    name: str,
    *,
    out: Path,
    options: TrainOptions,
    recipe: Mapping[str, Any],
    progress: Progress,
    body: Callable[[], tuple[torch.nn.Module, dict[str, float], str]],
) -> TrainReport:
    """Time ``body()`` under ``threads(options.num_threads)``, write its module, report.

    ``body`` draws the data, trains and returns ``(module, metrics, summary)``; the weights
    and sidecar go to ``out`` (:func:`save_weights`) and ``progress`` (if any) receives
    ``"{name}: {summary} -> {path}"``. The recorded ``settings`` are ``options.settings()``
    and ``recipe``, what the options do not say (optimizer, schedule, loss ...).
    """
    settings = {**options.settings(), **recipe}
    started = perf_counter()
    with threads(options.num_threads):
        module, metrics, summary = body()
    seconds = perf_counter() - started
    path = save_weights(module, out, name=name, metrics=metrics, settings=settings, seconds=seconds)
    if progress:
        progress(f"{name}: {summary} -> {path}")
    return TrainReport(name=name, path=path, seconds=seconds, metrics=metrics, settings=settings)
