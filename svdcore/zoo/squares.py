"""Rotated-squares autoencoders: the toy problem of SpecXAI (Druc et al.), sections 2.3 and 3.1.

Data: a white 32x32 square rotated by a uniformly random angle about the centre of a 64x64
black image (SpecXAI centres its squares; ``max_shift`` adds optional random shifts, unused
by the shipped networks). Pixel values are the fraction of the pixel the square covers, in
[0, 1], estimated from 32 samples per pixel on a rotated ("n-rooks") grid, so an edge at any
angle is resolved in 1/32 pixel steps: every square has an area of 1024 pixels to within
0.4% at every angle. Angles are drawn from [0, 90°), which holds every distinct orientation.

Network: a fully connected autoencoder with a bottleneck of 8,

    input (N, 1, 64, 64), flattened to 4096
    fc1 4096 -> 48, act1 ReLU, fc2 48 -> 32, act2 ReLU, fc3 32 -> 8, act3 ReLU   (encoder)
    fc4 8 -> 32, act4 ReLU, fc5 32 -> 48, act5 ReLU, fc6 48 -> 4096               (decoder)
    output (N, 1, 64, 64), no activation after fc6

so the network is piecewise linear and spectral surgery (``svdcore.surgery``) is exact,
bias terms included. SpecXAI does not give its hidden widths; 48 keeps each shipped file
under 2 MB of float32. Two variants, trained identically:

* ``squares-ae``: no biases at all (as SpecXAI section 2.3, for the comparison with the SVD
  of the data matrix, Fig. 8). Without biases a ReLU network is positively homogeneous:
  f(x) = J(x) x exactly, the bias term b(x) is zero.
* ``squares-ae-bias``: biases in every layer (SpecXAI section 3.1, Fig. 9), where the bias
  terms of the decoder carry much of the output and the singular components correct it.

``data_svd`` gives the SVD of the data matrix (rows = flattened images, not centred) with
its top right singular vectors as 64x64 images, to set beside the network's.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from svdcore.exceptions import DataError
from svdcore.spectrum import canonical_signs
from svdcore.zoo._training import Progress, SampledOptions, run_training, seeded_fit
from svdcore.zoo._types import TrainReport, ZooEntry, split_index

__all__ = [
    "DEFAULTS",
    "DIMS",
    "ENTRIES",
    "DataSVD",
    "SquaresAE",
    "build_bias",
    "build_plain",
    "data_svd",
    "make_data",
    "render",
    "train_bias",
    "train_plain",
]

SIZE = 64
SIDE = 32
IMAGE_SHAPE = (SIZE, SIZE)
INPUT_SHAPE = (1, SIZE, SIZE)
N_PIXELS = SIZE * SIZE
DIMS = (N_PIXELS, 48, 32, 8, 32, 48, N_PIXELS)
"""Layer widths fc1 .. fc6; the bottleneck (output of fc3 / act3) has 8 units."""

SAMPLES = 32
ROOKS_STEP = 13
"""Supersampling pattern: sample i of a pixel sits at ((i + 0.5) / 32, ((13 i) mod 32 + 0.5)
/ 32), one sample in every row and column of a 32x32 sub-grid (13 is coprime with 32)."""
CHUNK = 64
DATA_SEED = 0
"""Seed of the training and test images (never the training seed), so every trained model
is scored on the same test squares."""

DEFAULTS = SampledOptions(n_train=4096, n_test=512, epochs=200, batch_size=64, lr=2e-3)
"""The training options of both variants (the data seed is :data:`DATA_SEED` whatever
``seed``)."""


# --------------------------------------------------------------------------- data
def render(angles: np.ndarray, *, centres: np.ndarray | None = None) -> np.ndarray:
    """Anti-aliased images of a white 32x32 square on a black 64x64 background.

    ``angles`` (n,) in radians (counter-clockwise in (column, row) coordinates);
    ``centres`` (n, 2) as (column, row) in pixel units, pixel (i, j) covering
    [j, j + 1) x [i, i + 1); default the image centre (32, 32). Returns float32
    ``(n, 64, 64)``: the fraction of each pixel covered, from 32 rotated-grid samples.
    """
    angles = np.asarray(angles, dtype=np.float64).reshape(-1)
    n = angles.size
    if centres is None:
        centres = np.full((n, 2), SIZE / 2.0)
    centres = np.asarray(centres, dtype=np.float64)
    if centres.shape != (n, 2):
        raise DataError(f"centres must have shape ({n}, 2), got {centres.shape}")
    if not (np.isfinite(angles).all() and np.isfinite(centres).all()):
        raise DataError("angles and centres must be finite")
    i = np.arange(SAMPLES)
    offsets = np.stack([(i + 0.5) / SAMPLES, ((ROOKS_STEP * i) % SAMPLES + 0.5) / SAMPLES], 1)
    pixels = np.arange(SIZE, dtype=np.float64)
    half = SIDE / 2.0
    out = np.empty((n, SIZE, SIZE), dtype=np.float32)
    for start in range(0, n, CHUNK):
        sl = slice(start, start + CHUNK)
        c = np.cos(angles[sl])[:, None, None]
        s = np.sin(angles[sl])[:, None, None]
        cx = centres[sl, 0][:, None, None]
        cy = centres[sl, 1][:, None, None]
        covered = np.zeros((c.shape[0], SIZE, SIZE))
        for ox, oy in offsets:
            dx = pixels[None, None, :] + ox - cx
            dy = pixels[None, :, None] + oy - cy
            u = c * dx + s * dy
            v = c * dy - s * dx
            covered += (np.abs(u) <= half) & (np.abs(v) <= half)
        out[sl] = covered / SAMPLES
    return out


def make_data(
    *, n: int = 512, seed: int = 0, split: str = "test", max_shift: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotated squares: ``x`` float32 ``(n, 1, 64, 64)`` in [0, 1] and ``y = x`` (autoencoder).

    Angles uniform in [0, pi/2) from ``default_rng([seed, split, 0])``; with ``max_shift``
    > 0 the centre moves by a uniform shift in [-max_shift, max_shift] pixels along each
    axis (from ``default_rng([seed, split, 1])``; at most 9.3 keeps every square inside the
    image). Deterministic in ``(n, seed, split, max_shift)``; ``make_data(n=a)`` is a prefix
    of ``make_data(n=b)`` for a <= b; "train" and "test" draw from different streams.
    """
    s = split_index(split, data="squares")
    if not isinstance(n, int | np.integer) or n < 1:
        raise DataError(f"n must be a positive number of images, got {n}")
    limit = (SIZE - SIDE * np.sqrt(2.0)) / 2.0
    if not 0.0 <= max_shift <= limit:
        raise DataError(f"max_shift must lie in [0, {limit:.2f}] pixels, got {max_shift}")
    angles = np.random.default_rng([seed, s, 0]).uniform(0.0, np.pi / 2.0, size=n)
    centres = None
    if max_shift > 0:
        shifts = np.random.default_rng([seed, s, 1]).uniform(-max_shift, max_shift, (n, 2))
        centres = SIZE / 2.0 + shifts
    x = torch.from_numpy(render(angles, centres=centres)).reshape(n, *INPUT_SHAPE)
    return x, x


@dataclass(frozen=True)
class DataSVD:
    """SVD of the data matrix X (n, 4096), rows the flattened images (not centred).

    ``singular_values`` (min(n, 4096),) descending; ``vectors`` (k, 64, 64) the top k right
    singular vectors as images, each signed so that its largest-magnitude pixel is positive
    (the convention of ``svdcore.surgery``); ``explained`` (min(n, 4096),) the cumulative
    fraction of ||X||_F^2.
    """

    singular_values: np.ndarray
    vectors: np.ndarray
    explained: np.ndarray
    n: int
    seed: int
    split: str


def data_svd(*, n: int = 1024, seed: int = 0, split: str = "train", k: int = 8) -> DataSVD:
    """The SVD of ``make_data(n=n, seed=seed, split=split)`` as a data matrix (float64).

    SpecXAI Fig. 8a/c: its spectrum and first singular vectors (a disc, then pairs of rings
    with angular frequency 4, 8, 12, ...), to compare with the network's. About a second
    for n = 1024.
    """
    if not 1 <= k <= min(n, N_PIXELS):
        raise DataError(f"k must lie in [1, {min(n, N_PIXELS)}], got {k}")
    x, _ = make_data(n=n, seed=seed, split=split)
    X = x.reshape(n, N_PIXELS).double()
    # X^T = V S U^T: the tall factorisation is several times faster than that of X on CPU
    V, S, _ = torch.linalg.svd(X.T, full_matrices=False)
    top = canonical_signs(V[:, :k].numpy())[0].T
    s = S.numpy()
    energy = np.cumsum(s**2) / np.sum(s**2)
    return DataSVD(
        singular_values=s,
        vectors=top.reshape(k, *IMAGE_SHAPE),
        explained=energy,
        n=n,
        seed=seed,
        split=split,
    )


# --------------------------------------------------------------------------- network
class SquaresAE(nn.Module):
    """4096 -> 48 -> 32 -> 8 -> 32 -> 48 -> 4096 with ReLU between, none after ``fc6``.

    Input ``(N, 1, 64, 64)`` (or ``(N, 4096)``), output ``(N, 1, 64, 64)``.
    """

    def __init__(self, bias: bool):
        super().__init__()
        for i in range(len(DIMS) - 1):
            setattr(self, f"fc{i + 1}", nn.Linear(DIMS[i], DIMS[i + 1], bias=bias))
            if i < len(DIMS) - 2:
                setattr(self, f"act{i + 1}", nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.reshape(-1, N_PIXELS)
        for module in self.children():
            h = module(h)
        return h.reshape(-1, *INPUT_SHAPE)


def build_plain() -> SquaresAE:
    """A fresh bias-free squares autoencoder (PyTorch's default initialisation), eval mode."""
    return SquaresAE(bias=False).eval()


def build_bias() -> SquaresAE:
    """A fresh squares autoencoder with biases in every layer, eval mode."""
    return SquaresAE(bias=True).eval()


# --------------------------------------------------------------------------- training
def _bias_share(module: nn.Module, x: torch.Tensor) -> float:
    """Mean over samples of ||b(x)|| / ||f(x)||, b(x) = f(x) - J(x) x (float64)."""
    from torch.func import jvp

    m = copy.deepcopy(module).double().eval().requires_grad_(False)
    xd = x.double()
    y, jx = jvp(m, (xd,), (xd,))  # samples are independent: J x per sample
    b = (y - jx).reshape(len(x), -1)
    return float((b.norm(dim=1) / y.reshape(len(x), -1).norm(dim=1)).mean())


def _train(*, bias: bool, options: Mapping[str, Any], out: Path, progress: Progress) -> TrainReport:
    """The recipe of both variants, :func:`train_plain` and :func:`train_bias`, with
    ``options`` replacing some of :data:`DEFAULTS`."""
    name, builder = ("squares-ae-bias", build_bias) if bias else ("squares-ae", build_plain)
    opts = DEFAULTS.updated(name, options)
    recipe = {
        "data_seed": DATA_SEED,
        "optimizer": "Adam",
        "schedule": "one-cycle (max lr = lr), stepped per batch",
        "loss": "MSE",
    }

    def body() -> tuple[nn.Module, dict[str, float], str]:
        if progress:
            progress(f"{name}: drawing {opts.n_train} training and {opts.n_test} test squares")
        x, _ = make_data(n=opts.n_train, seed=DATA_SEED, split="train")
        xt, _ = make_data(n=opts.n_test, seed=DATA_SEED, split="test")
        baseline = float(((xt - x.mean(dim=0)) ** 2).mean())
        module = seeded_fit(
            builder,
            x,
            x,
            options=opts,
            loss_fn=nn.functional.mse_loss,
            optimizer=lambda m: torch.optim.Adam(m.parameters(), lr=opts.lr),
            scheduler=lambda opt, steps: torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=opts.lr, total_steps=steps
            ),
            evaluate=lambda m: {"test_mse": float(((m(xt) - xt) ** 2).mean())},
            progress=progress,
        )
        with torch.no_grad():
            test_mse = float(((module(xt) - xt) ** 2).mean())
            train_mse = float(((module(x) - x) ** 2).mean())
        metrics = {
            "test_mse": test_mse,
            "train_mse": train_mse,
            "baseline_mse": baseline,
            "mse_ratio": test_mse / baseline,
            "test_bias_share": _bias_share(module, xt),
        }
        return module, metrics, f"test MSE {test_mse:.5f} (baseline {baseline:.5f})"

    return run_training(name, out=out, options=opts, recipe=recipe, progress=progress, body=body)


def train_plain(*, out: Path, progress: Progress = None, **options: Any) -> TrainReport:
    """Train the bias-free squares autoencoder; write its weights to ``out`` (+ JSON sidecar).

    ``options`` replace fields of :data:`DEFAULTS` (``seed`` 0, ``n_train``, ``n_test``,
    ``epochs``, ``batch_size``, ``lr``, ``num_threads`` 1). MSE between output and input;
    Adam with a one-cycle schedule peaking at ``lr``, stepped per batch; minibatches of
    ``batch_size`` from ``n_train`` squares (split "train", data seed 0 whatever ``seed``),
    scored on ``n_test`` squares of split "test".
    ``metrics``: ``test_mse``, ``train_mse``, ``baseline_mse`` (the mean training image
    predicted for every test image), ``mse_ratio`` and ``test_bias_share`` (mean of
    ||f(x) - J x|| / ||f(x)||; zero without biases). Deterministic in ``seed``; the defaults
    take one to two minutes on one CPU thread.
    """
    return _train(bias=False, options=options, out=out, progress=progress)


def train_bias(*, out: Path, progress: Progress = None, **options: Any) -> TrainReport:
    """Train the squares autoencoder with biases; the same recipe as :func:`train_plain`."""
    return _train(bias=True, options=options, out=out, progress=progress)


_PLAIN_DESCRIPTION = (
    "The rotated-squares autoencoder of SpecXAI (Druc et al.) section 2.3: a white 32x32 "
    "square at a random angle in the centre of a black 64x64 image, reconstructed by a "
    "fully connected ReLU network 4096 -> 48 -> 32 -> 8 -> 32 -> 48 -> 4096 with no bias "
    "terms at all. Without biases the network is positively homogeneous: its output is "
    "exactly J(x) x, so a prediction is the sum of its singular components alone. What to "
    "look for (spectral surgery): split at fc6, the whole network as in the paper's Fig. 8,"
    " and set its right singular vectors beside those of the data matrix (a disc, then "
    "pairs of rings with angular frequency 4, 8, 12, ...): the network's live on the ring "
    "swept by the square's edges and corners and carry square edges, their contributions "
    "are whole squares at several angles, the spectrum has only 3 to 5 non-zero values (one "
    "per bottleneck unit that is on, out of 8), and the largest coefficient c_k = "
    "s_k (v_k . x) is often not the top singular value's. Split at fc3 for the 8 bottleneck"
    " directions. Shipped weights: test MSE 0.00037 on 512 held-out squares against 0.02480"
    " for always predicting the mean image."
)

_BIAS_DESCRIPTION = (
    "The rotated-squares autoencoder of SpecXAI section 2.3 (4096 -> 48 -> 32 -> 8 -> 32 -> "
    "48 -> 4096, ReLU, no activation after fc6), trained with the same recipe as squares-ae "
    "but with a bias in every layer, for the paper's bias discussion (section 3.1, Fig. 9). "
    "The network is piecewise linear, so f(x) = J(x) x + b(x) exactly and the bias term "
    "splits exactly into per-layer terms beta_l = (dy/db_l) b_l (eq. 9). What to look for "
    "(spectral surgery at fc6 or fc3, bias contributions per layer): the decoder's terms "
    "beta_fc4, beta_fc5, beta_fc6 look like noisy point clouds whose sum is a rough blob, "
    "and the singular components supply the square and correct its edges; compare with "
    "squares-ae, where the singular components carry everything. In these shipped weights "
    "b(x) carries 22% of the output norm on average over the test squares (other training "
    "runs share the work differently). Shipped weights: test MSE 0.00016 on 512 held-out "
    "squares against 0.02480 for the mean image (squares-ae: 0.00037)."
)

_PLAIN_ENTRY = ZooEntry(
    name="squares-ae",
    title="Rotated squares autoencoder, no biases (SpecXAI 2.3)",
    description=_PLAIN_DESCRIPTION,
    input_shape=INPUT_SHAPE,
    image_shape=IMAGE_SHAPE,
    build=build_plain,
    make_data=make_data,
    train=train_plain,
)

ENTRIES = (
    _PLAIN_ENTRY,
    replace(
        _PLAIN_ENTRY,
        name="squares-ae-bias",
        title="Rotated squares autoencoder, with biases (SpecXAI 3.1)",
        description=_BIAS_DESCRIPTION,
        build=build_bias,
        train=train_bias,
    ),
)
