"""Sample thumbnails as data URIs: small PNG images (Pillow)
and SVG sparklines for 1-D signals. Pure numpy in, strings out."""

from __future__ import annotations

import base64
import io
from urllib.parse import quote

import numpy as np
from PIL import Image

__all__ = ["curve_thumbnail", "image_thumbnail", "png_bytes"]


def png_bytes(pixels: np.ndarray) -> bytes:
    """An 8-bit PNG of `pixels`: (h, w) grey or (h, w, 3) RGB, values 0..255 (uint8),
    written by Pillow."""
    a = np.ascontiguousarray(pixels, dtype=np.uint8)
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise ValueError(f"expected (h, w) or (h, w, 3) pixels, got shape {a.shape}")
    buffer = io.BytesIO()
    Image.fromarray(a, mode="L" if a.ndim == 2 else "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _to_bytes(values: np.ndarray) -> np.ndarray:
    v = np.nan_to_num(np.asarray(values, dtype=np.float64))
    lo, hi = float(v.min()), float(v.max())
    scaled = (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
    return np.round(scaled * 255).astype(np.uint8)


def image_thumbnail(image: np.ndarray, *, invert: bool = False) -> str:
    """A data URI of an (h, w) image (grey, min..max stretched) or (3, h, w) / (h, w, 3)
    colour image. `invert`: dark ink on white (digits)."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[2] != 3:
        a = np.moveaxis(a, 0, 2)
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise ValueError(f"expected an (h, w) or colour image, got shape {a.shape}")
    pixels = _to_bytes(a)
    if invert:
        pixels = 255 - pixels
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels)).decode("ascii")


def curve_thumbnail(values: np.ndarray, *, width: int = 96, height: int = 48) -> str:
    """A data URI of an SVG sparkline of the 1-D `values` (scaled to the box)."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64).reshape(-1))
    if v.size == 0:
        raise ValueError("a curve thumbnail needs at least one value")
    if v.size > 4 * width:  # more points than pixels: keep every n-th
        v = v[:: int(np.ceil(v.size / (4 * width)))]
    lo, hi = float(v.min()), float(v.max())
    ys = (hi - v) / (hi - lo) if hi > lo else np.full_like(v, 0.5)
    xs = np.linspace(0, width, v.size) if v.size > 1 else np.array([width / 2])
    pad = 3
    points = " ".join(
        f"{x:.1f},{pad + y * (height - 2 * pad):.1f}" for x, y in zip(xs, ys, strict=True)
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><rect width="100%" height="100%" fill="white"/>'
        f'<polyline fill="none" stroke="#1f4e79" stroke-width="1.4" points="{points}"/></svg>'
    )
    return "data:image/svg+xml;utf8," + quote(svg)
