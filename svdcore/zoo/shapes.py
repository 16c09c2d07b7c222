"""Coloured shapes on cluttered backgrounds: 3x64x64 images for the ``shapes-vgg`` CNN.

Each image holds one object of four classes, a disc, a square, a triangle or a cross, of a
random size (radius 8 to 14 pixels: the disc's radius, the square's half side, the
triangle's circumradius, the cross's half length), rotation and saturated colour, at a
random place, on a background that is hard to ignore:

- a smooth colour texture: per channel, three random plane gratings (wavelengths 8 to 40
  pixels) around a random base level;
- five straight line segments (one to two pixels wide, 10 to 40 long) and eight small dots
  (radius 1 to 2.5), in random colours: edges and blobs everywhere, but none of them one of
  the classes' shapes, so only the object tells the class;
- Gaussian pixel noise (standard deviation 0.03); values clipped to [0, 1].

Pixels are the mean of a 2x2 supersampling grid (smooth edges at every angle). Everything
is drawn from per-image parameters: image i of a split is the same whatever ``n`` (the
first ``n`` of the split are returned), and :func:`masks` gives each object's pixel mask,
to score where an explanation falls.
"""

from __future__ import annotations

import numpy as np

from svdcore.exceptions import DataError
from svdcore.zoo._types import split_index

__all__ = ["CLASSES", "IMAGE_SHAPE", "INPUT_SHAPE", "SIZES", "make_images", "masks"]

SIZE = 64
IMAGE_SHAPE = (SIZE, SIZE)
INPUT_SHAPE = (3, SIZE, SIZE)
CLASSES = ("disc", "square", "triangle", "cross")
SIZES = {"train": 6000, "test": 1000}
"""Images per split (any first n of them can be drawn)."""
DATA_SEED = 2024
N_LINES, N_DOTS, N_GRATINGS = 5, 8, 3
NOISE = 0.03
CHUNK = 256
_SUB = (np.array([0.25, 0.75]),) * 2  # 2x2 supersampling offsets within a pixel


def _parameters(split: str, n: int) -> dict[str, np.ndarray]:
    """Every random number of the first ``n`` images of ``split``, one row per image."""
    total = SIZES[split]
    rng = np.random.default_rng([DATA_SEED, split_index(split, data="shapes")])

    def draw(*shape: int, low: float = 0.0, high: float = 1.0) -> np.ndarray:
        return rng.uniform(low, high, (total, *shape))[:n]

    p = {
        "label": rng.integers(0, len(CLASSES), total)[:n],
        "radius": draw(low=8.0, high=14.0),
        "angle": draw(low=0.0, high=2 * np.pi),
        "hue": draw(),
        "value": draw(low=0.75, high=1.0),
        "grating_k": draw(3, N_GRATINGS, 2, low=-1.0, high=1.0),
        "grating_len": draw(3, N_GRATINGS, low=8.0, high=40.0),
        "grating_phase": draw(3, N_GRATINGS, low=0.0, high=2 * np.pi),
        "grating_amp": draw(3, N_GRATINGS, low=0.02, high=0.08),
        "base": draw(3, low=0.25, high=0.6),
        "line_start": draw(N_LINES, 2, low=0.0, high=SIZE),
        "line_angle": draw(N_LINES, low=0.0, high=np.pi),
        "line_len": draw(N_LINES, low=10.0, high=40.0),
        "line_width": draw(N_LINES, low=0.5, high=1.0),
        "line_colour": draw(N_LINES, 3),
        "dot_centre": draw(N_DOTS, 2, low=0.0, high=SIZE),
        "dot_radius": draw(N_DOTS, low=1.0, high=2.5),
        "dot_colour": draw(N_DOTS, 3),
        "noise_seed": rng.integers(0, 2**31 - 1, total)[:n],
    }
    margin = p["radius"] + 1.0
    p["centre"] = margin[:, None] + draw(2) * (SIZE - 2 * margin[:, None])
    return p


def _hsv_colour(hue: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Fully saturated RGB (n, 3) of ``hue`` in [0, 1) at brightness ``value``."""
    k = (np.array([5.0, 3.0, 1.0])[None, :] + 6.0 * hue[:, None]) % 6.0
    return value[:, None] * (1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0))


def _object_cover(p: dict[str, np.ndarray], sl: slice, xs: np.ndarray, ys: np.ndarray):
    """Boolean (m, S, S) of the object at sample positions (xs, ys) for images ``sl``: xs
    (1, S) the column coordinates, ys (S, 1) the row coordinates (or both (S, S))."""
    cx = p["centre"][sl, 0][:, None, None]
    cy = p["centre"][sl, 1][:, None, None]
    r = p["radius"][sl][:, None, None]
    a = p["angle"][sl][:, None, None]
    dx, dy = xs[None] - cx, ys[None] - cy
    u = (np.cos(a) * dx + np.sin(a) * dy) / r
    v = (np.cos(a) * dy - np.sin(a) * dx) / r
    label = p["label"][sl][:, None, None]
    disc = u * u + v * v <= 1.0
    square = (np.abs(u) <= 0.85) & (np.abs(v) <= 0.85)
    # equilateral triangle of circumradius 1: three half-planes at 120 degrees
    tri = np.ones_like(disc)
    for k in range(3):
        t = 2 * np.pi * k / 3
        tri &= np.cos(t) * u + np.sin(t) * v <= 0.5
    arm = 0.3
    cross = ((np.abs(u) <= arm) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= arm) & (np.abs(u) <= 1.0))
    return np.select([label == 0, label == 1, label == 2], [disc, square, tri], cross)


def _samples() -> list[tuple[np.ndarray, np.ndarray]]:
    """The 2x2 supersampling positions: (xs (1, S) column coordinates, ys (S, 1) rows)."""
    grid = np.arange(SIZE, dtype=np.float64)
    return [((grid + ox)[None, :], (grid + oy)[:, None]) for ox in _SUB[0] for oy in _SUB[1]]


def _background(p: dict[str, np.ndarray], sl: slice, xs: np.ndarray, ys: np.ndarray):
    """The colour texture (m, 3, S, S) at one supersampling position: the base level plus
    the plane gratings, each phase k . (x, y) / wavelength + phase."""
    k = p["grating_k"][sl]  # (m, 3, G, 2)
    k = k / np.maximum(np.linalg.norm(k, axis=-1, keepdims=True), 1e-9)
    freq = 2 * np.pi / p["grating_len"][sl]  # (m, 3, G)
    phase, amp = p["grating_phase"][sl], p["grating_amp"][sl]
    m = len(k)
    layer = np.empty((m, 3, SIZE, SIZE))
    layer[...] = p["base"][sl][:, :, None, None]
    for g in range(N_GRATINGS):
        # separable: sin(a(x) + b(y)) = sin a cos b + cos a sin b, so only the 1-D phases
        # a = f k_x x + phase and b = f k_y y go through sin / cos (to float64 round-off)
        f = freq[:, :, g, None, None]
        a = f * (k[:, :, g, 0, None, None] * xs) + phase[:, :, g, None, None]  # (m, 3, 1, S)
        b = f * (k[:, :, g, 1, None, None] * ys)  # (m, 3, S, 1)
        amp_g = amp[:, :, g, None, None]
        layer += (amp_g * np.sin(a)) * np.cos(b) + (amp_g * np.cos(a)) * np.sin(b)
    return layer


def _on_top(p: dict[str, np.ndarray], sl: slice, xs: np.ndarray, ys: np.ndarray):
    """Index (m, S, S) int8 of the primitive drawn last at each position: 0 to
    N_LINES - 1 a line, then the dots, N_LINES + N_DOTS the object; -1 the texture."""
    m = len(p["label"][sl])
    top = np.full((m, SIZE, SIZE), -1, dtype=np.int8)
    for j in range(N_LINES):
        x0, y0 = p["line_start"][sl, j, 0], p["line_start"][sl, j, 1]
        t = p["line_angle"][sl, j]
        c, s = np.cos(t)[:, None, None], np.sin(t)[:, None, None]
        dx, dy = xs[None] - x0[:, None, None], ys[None] - y0[:, None, None]  # (m,1,S), (m,S,1)
        along = c * dx + s * dy
        on = (along >= 0) & (along <= p["line_len"][sl, j][:, None, None])
        on &= np.abs(c * dy - s * dx) <= p["line_width"][sl, j][:, None, None]
        top[on] = j
    for j in range(N_DOTS):
        cx, cy = p["dot_centre"][sl, j, 0], p["dot_centre"][sl, j, 1]
        d2 = (xs[None] - cx[:, None, None]) ** 2 + (ys[None] - cy[:, None, None]) ** 2
        top[d2 <= p["dot_radius"][sl, j][:, None, None] ** 2] = N_LINES + j
    top[_object_cover(p, sl, xs, ys)] = N_LINES + N_DOTS
    return top


def _render(p: dict[str, np.ndarray], sl: slice) -> tuple[np.ndarray, np.ndarray]:
    """Images (m, 3, 64, 64) float32 and object masks (m, 64, 64) bool of images ``sl``.

    At each supersampling position the texture, then the lines, the dots and the object
    painted over it in that order (each pixel takes the colour of the last one covering
    it); the four positions averaged, then the pixel noise."""
    m = len(p["label"][sl])
    # (m, P, 3): the colour of every primitive, in the order of _on_top's indices
    palette = np.concatenate(
        [
            p["line_colour"][sl],
            p["dot_colour"][sl],
            _hsv_colour(p["hue"][sl], p["value"][sl])[:, None],
        ],
        axis=1,
    )
    img = np.zeros((m, 3, SIZE, SIZE))
    mask = np.zeros((m, SIZE, SIZE), dtype=np.int8)
    for xs, ys in _samples():
        layer = _background(p, sl, xs, ys)
        top = _on_top(p, sl, xs, ys)
        n, i, j = np.nonzero(top >= 0)
        layer[n, :, i, j] = palette[n, top[n, i, j]]
        img += layer / 4.0
        mask += top == N_LINES + N_DOTS
    for i, seed in enumerate(p["noise_seed"][sl]):
        img[i] += NOISE * np.random.default_rng(int(seed)).standard_normal((3, SIZE, SIZE))
    return np.clip(img, 0.0, 1.0).astype(np.float32), mask >= 2


def _count(split: str, n: int | None) -> int:
    if split not in SIZES:
        split_index(split, data="shapes")  # raises the DataError naming the splits
    total = SIZES[split]
    if n is None:
        return total
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= total:
        raise DataError(f"n must be between 1 and {total} for shapes split {split!r}, got {n!r}")
    return int(n)


def make_images(
    *, n: int | None = None, split: str = "test"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``n`` images of ``split`` (None: all of :data:`SIZES`): images float32
    (n, 3, 64, 64) in [0, 1], labels int64 (n,) indexing :data:`CLASSES`, object masks
    bool (n, 64, 64)."""
    count = _count(split, n)
    p = _parameters(split, count)
    images = np.empty((count, *INPUT_SHAPE), dtype=np.float32)
    object_masks = np.empty((count, SIZE, SIZE), dtype=bool)
    for start in range(0, count, CHUNK):
        sl = slice(start, min(start + CHUNK, count))
        images[sl], object_masks[sl] = _render(p, sl)
    return images, p["label"].astype(np.int64), object_masks


def masks(*, n: int | None = None, split: str = "test") -> np.ndarray:
    """The object masks (n, 64, 64) of :func:`make_images` with the same ``n`` and ``split``
    (the object alone is drawn: no texture, lines or dots), True where the object covers at
    least two of a pixel's four supersampling positions."""
    count = _count(split, n)
    p = _parameters(split, count)
    out = np.zeros((count, SIZE, SIZE), dtype=np.int8)
    for start in range(0, count, CHUNK):
        sl = slice(start, min(start + CHUNK, count))
        for xs, ys in _samples():
            out[sl] += _object_cover(p, sl, xs, ys)
    return out >= 2
