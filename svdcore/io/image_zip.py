"""``.zip`` folders of PNG/JPEG images as a :class:`~svdcore.io.dataset_base.Dataset`.

Sized from the zip directory before anything is unpacked, then read member by member in
memory (never extracted) in bounded chunks; unsafe member names are refused
(:mod:`svdcore.io._archives`). The folder holding an image is its class.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from ..exceptions import DataError, LoadError, SvdscopeError
from ._archives import check_zip_sizes, member_path, open_zip
from .dataset_base import Dataset, make_dataset

__all__ = ["MAX_IMAGES", "MAX_IMAGE_PIXELS", "MAX_UNZIPPED_BYTES", "read_zip"]

MAX_IMAGES = 100_000
"""Default cap on the number of images read from one ``.zip``."""
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024
"""Default cap on the bytes decompressed from one ``.zip`` (all members together)."""
MAX_IMAGE_PIXELS = 4096 * 4096
"""Largest image (width x height) accepted from a ``.zip``."""

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
_CHUNK = 1 << 16


def _safe_member(name: str, archive: str) -> PurePosixPath:
    """The member path, or ``LoadError`` for names that could escape a folder or nest too
    deep (`_archives.member_path`)."""
    return member_path(name, archive)


def _read_member(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, archive: str, cap: int
) -> bytes:
    """Decompress one member in chunks, never more than ``budget`` bytes."""
    if info.file_size > budget:
        raise LoadError(
            f"{archive} unpacks to more than {cap:,} bytes (at {info.filename!r}); "
            "upload fewer or smaller images."
        )
    buf = io.BytesIO()
    try:
        with zf.open(info) as member:
            while True:
                chunk = member.read(_CHUNK)
                if not chunk:
                    break
                buf.write(chunk)
                if buf.tell() > budget:
                    raise LoadError(
                        f"{archive} unpacks to more than {cap:,} bytes (at {info.filename!r}); "
                        "upload fewer or smaller images."
                    )
    except SvdscopeError:
        raise
    except Exception as exc:  # BadZipFile (CRC, headers), zlib.error, unsupported methods
        raise LoadError(
            f"{archive}: {info.filename} cannot be unpacked ({type(exc).__name__}: {exc}); "
            "the zip is corrupt or uses an unsupported compression."
        ) from exc
    return buf.getvalue()


def _natural(name: str) -> tuple:
    """A sort key that orders "img2" before "img10": the runs of decimal digits (the odd
    parts of the split) compare as numbers, the text between them case-insensitively. (Not
    ``str.isdigit``: "²" is a digit to it but not a number to ``int``.)"""
    parts = re.split(r"(\d+)", name)
    return tuple(int(t) if i % 2 else t.lower() for i, t in enumerate(parts))


def _decode_image(data: bytes, member: str, archive: str):
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_IMAGE_PIXELS:
            raise LoadError(
                f"{archive}: {member} is {img.width}x{img.height} pixels, above the limit of "
                f"{MAX_IMAGE_PIXELS:,}; use smaller images."
            )
        img.load()
    except LoadError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise LoadError(
            f"{archive}: {member} is not a readable PNG/JPEG image ({exc}); remove or re-save it."
        ) from exc
    return img


def _pixels(img, rgb: bool) -> np.ndarray:
    """(C, H, W) float32 in [0, 1]."""
    if rgb:
        if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            arr = np.asarray(img, dtype=np.float64)
            arr = np.repeat((arr / (65535.0 if arr.max() > 255 else 255.0))[None], 3, axis=0)
            return arr.astype(np.float32)
        return (np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0).transpose(2, 0, 1)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64) / 65535.0
        return arr[None].astype(np.float32)
    if img.mode == "F":
        return np.asarray(img, dtype=np.float32)[None]
    return (np.asarray(img.convert("L"), dtype=np.float32) / 255.0)[None]


def read_zip(
    path: Path,
    labels: str | None,
    input_shape: Sequence[int] | None,
    *,
    max_images: int,
    max_bytes: int,
) -> Dataset:
    archive = path.name
    if labels is not None:
        raise DataError(
            f"{archive}: the labels of a zip of images are its folder names; leave labels unset."
        )
    zf = open_zip(path, archive)
    with zf:
        entries: list[tuple[PurePosixPath, zipfile.ZipInfo]] = []
        skipped = 0
        for info in zf.infolist():
            member = _safe_member(info.filename, archive)
            if info.is_dir():
                continue
            parts = member.parts
            if parts and (parts[0] == "__MACOSX" or parts[-1].startswith(".")):
                continue
            if member.suffix.lower() not in _IMAGE_SUFFIXES:
                skipped += 1
                continue
            if info.flag_bits & 0x1:
                raise LoadError(f"{archive} is encrypted ({member}); upload an unencrypted zip.")
            entries.append((member, info))
            if len(entries) > max_images:
                raise LoadError(
                    f"{archive} holds more than {max_images:,} images; upload a smaller sample."
                )
        if not entries:
            raise LoadError(
                f"{archive} contains no PNG or JPEG images; put one folder per class of "
                ".png/.jpg files in the zip."
            )
        # refused before anything is unpacked: too much data declared, or a zip bomb
        check_zip_sizes((info for _, info in entries), archive, max_bytes=max_bytes, what="images")
        entries.sort(key=lambda e: _natural(str(e[0])))
        budget = max_bytes
        decoded = 0
        images = []
        for member, info in entries:
            data = _read_member(zf, info, budget, archive, max_bytes)
            budget -= len(data)
            img = _decode_image(data, str(member), archive)
            decoded += img.width * img.height * 3 * 4  # float32, at most 3 channels
            if decoded > max_bytes:
                raise LoadError(
                    f"{archive} decodes to more than {max_bytes:,} bytes of pixels (at "
                    f"{member}); upload fewer or smaller images."
                )
            images.append((member, img))
    first_member, first = images[0]
    for member, img in images[1:]:
        if img.size != first.size:
            raise DataError(
                f"{archive}: images differ in size ({first_member} is {first.width}x"
                f"{first.height}, {member} is {img.width}x{img.height}); resize them to one "
                "size."
            )
    rgb = any(img.mode not in _GRAY_MODES for _, img in images)
    x = np.stack([_pixels(img, rgb) for _, img in images])
    folders = [member.parent.name for member, _ in images]
    notes: list[str] = []
    if skipped:
        notes.append(f"skipped {skipped} file(s) that are not .png/.jpg/.jpeg images.")
    if rgb and any(img.mode in _GRAY_MODES for _, img in images):
        notes.append("mixed grayscale and colour images: all read as RGB.")
    y = None
    classes = None
    if any(folders):
        if not all(folders):
            loose = next(str(m) for m, _ in images if not m.parent.name)
            raise DataError(
                f"{archive}: some images sit in class folders and some do not (e.g. {loose}); "
                "put every image in the folder of its class."
            )
        names = sorted(set(folders), key=_natural)
        if all(re.fullmatch(r"0|[1-9]\d{0,2}", f) for f in names):
            classes = [str(i) for i in range(int(names[-1]) + 1)]
            y = np.array([int(f) for f in folders], dtype=np.int64)
        else:
            classes = names
            lookup = {c: i for i, c in enumerate(classes)}
            y = np.array([lookup[f] for f in folders], dtype=np.int64)
    return make_dataset(
        x, y, name=archive, input_shape=input_shape, classes=classes, notes=tuple(notes)
    )
