"""The example zoo: small trained networks from the papers, with their data and training.

===================  ===============================================================  =============
name                 network                                                          input
===================  ===============================================================  =============
``deernet``          Amey et al. 2021: 256 -> 80 (tanh) -> 256 (logistic)             DEER trace
``digits``           Pattichis & Pattichis: 64 -> 10 (SELU)                           8x8 image
``digits-5layer``    Pattichis & Pattichis: 64 -> 256 -> 256 -> 128 -> 32 -> 10       8x8 image
``digits-cnn``       residual CNN, 3x3 kernels (Pattichis Fig. 2 analogue)            1x8x8 image
``squares-ae``       SpecXAI 2.3: 4096 -> 48 -> 32 -> 8 -> 32 -> 48 -> 4096, no bias  1x64x64 image
``squares-ae-bias``  the same with biases (SpecXAI 3.1, Fig. 9)                       1x64x64 image
``ilr-biexp-ndnd``   Sule et al. ILR: 128 -> 32 -> 256 -> 256 -> 2 (ReLU), (ND, ND)   2 x 64 decay
``ilr-biexp-ndreg``  the same, (ND, Reg): noisy decay + regularised-NLLS Reg track    2 x 64 decay
``shapes-vgg``       VGG-style CNN, five 3x3 convs (SpecXAI Fig. 2-3 analogue)        3x64x64 image
===================  ===============================================================  =============

Every entry ships float32 safetensors weights in ``svdcore/zoo/weights/<name>.safetensors``
with a JSON sidecar of the metrics and settings of the run that produced them;
``train(name)`` repeats that run (deterministic in ``seed``) and overwrites them.

>>> module = load_module("digits")          # torch.nn.Module, eval mode
>>> x, y = get("digits").make_data(split="test")
>>> ds = dataset("digits", split="test")      # the same data as a svdcore Dataset
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch

from svdcore.exceptions import LoadError
from svdcore.io.dataset_base import Dataset, make_dataset
from svdcore.network import Network
from svdcore.zoo import deernet, digits, digits_cnn, ilr, shapes_cnn, squares
from svdcore.zoo._training import Progress
from svdcore.zoo._types import Axis, TrainReport, ZooEntry

__all__ = [
    "Axis",
    "TrainReport",
    "ZooEntry",
    "dataset",
    "get",
    "load",
    "load_module",
    "names",
    "train",
    "weights_path",
]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

_ENTRIES: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        deernet.ENTRY,
        *digits.ENTRIES,
        digits_cnn.ENTRY,
        *squares.ENTRIES,
        *ilr.ENTRIES,
        shapes_cnn.ENTRY,
    )
}


def names() -> list[str]:
    """Names of the built-in example networks, in display order."""
    return list(_ENTRIES)


def get(name: str) -> ZooEntry:
    """The zoo entry called ``name``; raises ``LoadError`` naming the valid names if unknown."""
    try:
        return _ENTRIES[name]
    except (KeyError, TypeError):
        raise LoadError(
            f"there is no example network called {name!r}; choose one of: {', '.join(names())}"
        ) from None


def weights_path(name: str) -> Path:
    """Path of the shipped weights of ``name``: ``svdcore/zoo/weights/<name>.safetensors``."""
    return WEIGHTS_DIR / get(name).weights_file


def load_module(name: str) -> torch.nn.Module:
    """``get(name).build()`` with the shipped weights loaded strictly, in eval mode.

    Raises ``LoadError`` if the weights file is missing, unreadable or does not match the
    architecture (then retrain it with ``svdscope zoo train NAME``).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    entry = get(name)
    path = weights_path(name)
    if not path.is_file():
        raise LoadError(
            f"the weights of example network {name!r} are missing ({path}); "
            f"recreate them with `svdscope zoo train {name}`"
        )
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise LoadError(
            f"could not read the weights of example network {name!r} from {path}: {exc}; "
            f"recreate them with `svdscope zoo train {name}`"
        ) from exc
    module = entry.build()
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise LoadError(
            f"the weights in {path} do not fit the {name!r} architecture: {exc}; "
            f"recreate them with `svdscope zoo train {name}`"
        ) from exc
    return module.eval()


def load(name: str) -> Network:
    """Example network ``name`` as an executable :class:`~svdcore.network.Network`.

    Layer names are the module names (``fc1``, ``fc2`` ...); the input shape, image shape and
    physical axes of the entry are attached, so views label DEER time in µs, distance in nm,
    and draw digits inputs as 8x8 images. Raises ``LoadError`` like :func:`load_module`.
    """
    entry = get(name)
    return Network.from_module(
        load_module(name),
        input_shape=entry.input_shape,
        name=name,
        image_shape=entry.image_shape,
        input_axis=entry.input_axis,
        output_axis=entry.output_axis,
        description=entry.description,
        origin=f"zoo:{name}",
    )


def dataset(name: str, *, split: str = "test", n: int | None = None, seed: int = 0) -> Dataset:
    """The data example network ``name`` was made for, from its zoo generator, as a Dataset.

    ``split`` "train" or "test" (digits also "all"); ``n`` a subset size (deernet: default
    1000 traces). Inputs have the network's input shape (digits-cnn: (N, 1, 8, 8)); ``y``
    is the class index for the digits networks and the target distance distribution
    (N, 256) for deernet. Invariant: ``x.shape[1:] == get(name).input_shape``.
    Raises ``LoadError`` for an unknown name, ``DataError`` for a bad split or ``n``.

    The generators are deterministic, so the last few datasets made are kept in this
    process and handed out again (shapes-vgg's 1000 test images take seconds to draw):
    treat the tensors as read-only.
    """
    get(name)  # an unknown name: LoadError (never cached)
    try:
        hash((split, n, seed))
    except TypeError:  # an unhashable bad argument: the generator names the problem
        return _make(name, split, n, seed)
    return _dataset(name, split, n, seed)


def _make(name: str, split: str, n: int | None, seed: int) -> Dataset:
    entry = get(name)
    kwargs: dict[str, object] = {"split": split, "seed": seed}
    if n is not None:
        kwargs["n"] = n
    x, y = entry.make_data(**kwargs)
    return make_dataset(x, y, name=f"{name} ({split})", input_shape=entry.input_shape)


_dataset = functools.lru_cache(maxsize=4)(_make)


def train(
    name: str,
    *,
    out: Path | None = None,
    seed: int = 0,
    progress: Progress = None,
    **kw: Any,
) -> TrainReport:
    """Train example network ``name`` from scratch with its documented defaults.

    Writes safetensors weights to ``out`` (default: ``weights_path(name)``, replacing the
    shipped file) and a JSON sidecar next to it. ``kw`` overrides the family's options
    (``epochs``, ``batch_size``, ``lr``, ``num_threads``; deernet, the squares and the ILR
    networks also ``n_train``, ``n_test``); an unknown one raises ``DataError``.
    ``progress`` receives one-line status messages.
    """
    entry = get(name)
    target = weights_path(name) if out is None else Path(out)
    return entry.train(out=target, seed=seed, progress=progress, **kw)
