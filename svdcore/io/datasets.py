"""Dataset readers: ``.npy``, ``.npz``, ``.csv``, ``.pt`` and ``.zip`` folders of images.

Every reader returns a :class:`Dataset`: inputs ``x`` (N, ...) float32 and optional targets
``y`` (N,) int64 class labels or float32 targets (N, ...). Values are kept as stored
(cast to float32), except images, which are scaled to [0, 1].

Security (DESIGN.md, "Rules for uploads"): nothing here unpickles code. ``.npy``/``.npz``
are read with ``allow_pickle=False`` (a ``.npy`` memory-mapped, so a header that declares
more data than the file holds is refused instead of allocated); ``.pt`` through
``torch.load(weights_only=True)``; ``.zip`` archives (and ``.npz``, which are zips) are sized
from their directory before anything is unpacked (total `MAX_UNZIPPED_BYTES`, compression
ratio `_archives.MAX_COMPRESSION_RATIO`), then read member by member in memory, never
extracted, in bounded chunks (so a zip bomb that lies about its sizes is stopped too);
member names with ``..``, absolute paths, drive letters, control characters or more than
`_archives.MAX_ZIP_DEPTH` levels of folders are refused. Any other failure of a reader
becomes a ``LoadError`` naming the file: only ``SvdscopeError`` leaves ``load_dataset``.

Layouts:

- ``.npy``: one array, the inputs (samples along the first axis).
- ``.npz``: arrays ``x`` and optional ``y`` (``labels`` names another label array).
- ``.csv``: a header row; ``labels`` names the label column, every other column is a
  feature and must be numeric. Text labels become class indices (``classes`` = the sorted
  names); whole-number labels become int64, other numbers float32 targets.
- ``.pt``: a tensor (the inputs), a dict with ``x`` (and ``y``), or a pair ``(x, y)``.
- ``.zip``: PNG/JPEG images; the folder holding an image is its class (``cats/1.png``,
  ``train/cats/1.png``); images at the top level have no label. All images must have one
  size. Grayscale images give ``x`` (N, 1, H, W); if any image has colour, all are read
  as RGB, (N, 3, H, W) (alpha dropped). 8-bit pixels are divided by 255, 16-bit by 65535.
  Class names that are all plain whole numbers (``0``, ``1``, ... ``9``) keep their value
  as the label (``classes[i] == str(i)``); other names are sorted and numbered from 0.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from ..exceptions import DataError, LoadError, SvdscopeError
from ._archives import check_zip_sizes, member_path, open_zip
from ._torchload import load_weights_only

__all__ = [
    "DATASET_SUFFIXES",
    "MAX_IMAGES",
    "MAX_IMAGE_PIXELS",
    "MAX_UNZIPPED_BYTES",
    "Dataset",
    "load_dataset",
    "zoo_dataset",
]

DATASET_SUFFIXES: tuple[str, ...] = (".npy", ".npz", ".csv", ".pt", ".pth", ".zip")
MAX_IMAGES = 100_000
"""Default cap on the number of images read from one ``.zip``."""
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024
"""Default cap on the bytes decompressed from one ``.zip`` (all members together)."""
MAX_IMAGE_PIXELS = 4096 * 4096
"""Largest image (width x height) accepted from a ``.zip``."""

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
_CHUNK = 1 << 16


@dataclass(frozen=True, eq=False)
class Dataset:
    """Inputs and optional targets, samples along the first axis.

    ``x`` (N, ...) float32, finite; ``y`` None, (N,) int64 class labels, or (N, ...)
    float32 targets; ``name`` for display; ``classes`` the class names indexed by label
    (image-folder zips and text CSV labels) or None; ``notes`` what the reader skipped or
    changed, one sentence each. Invariant (checked on construction): ``len(y) == len(x)``.
    """

    x: torch.Tensor
    y: torch.Tensor | None
    name: str
    classes: list[str] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor) or self.x.dtype != torch.float32:
            raise DataError("Dataset.x must be a float32 torch.Tensor.")
        if self.x.ndim < 2 or self.x.shape[0] == 0:
            raise DataError(
                f"Dataset.x must have shape (N, ...) with N >= 1, got {tuple(self.x.shape)}."
            )
        if self.y is not None:
            if not isinstance(self.y, torch.Tensor) or self.y.dtype not in (
                torch.int64,
                torch.float32,
            ):
                raise DataError("Dataset.y must be None, an int64 or a float32 tensor.")
            if self.y.ndim == 0 or self.y.shape[0] != self.x.shape[0]:
                raise DataError(
                    f"Dataset has {self.x.shape[0]} inputs but y of shape "
                    f"{tuple(self.y.shape)}: one target per sample is needed."
                )
            if self.y.dtype == torch.int64 and self.y.ndim != 1:
                raise DataError("integer class labels y must be 1-D, one label per sample.")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one input, ``x.shape[1:]``."""
        return tuple(int(s) for s in self.x.shape[1:])

    @property
    def is_classification(self) -> bool:
        """True when ``y`` holds integer class labels."""
        return self.y is not None and self.y.dtype == torch.int64

    def flat(self) -> torch.Tensor:
        """Inputs as (N, prod(sample_shape)), the form the subspace functions take."""
        return self.x.reshape(self.x.shape[0], -1)

    def reshaped(self, input_shape: Sequence[int]) -> Dataset:
        """This dataset with inputs reshaped to (N, *input_shape); ``DataError`` if the
        number of values per sample differs (naming both shapes)."""
        x = _fit_shape(self.x, input_shape)
        return Dataset(x, self.y, self.name, self.classes, self.notes)


# ----------------------------------------------------------------------------- checks
def _fit_shape(x: torch.Tensor, input_shape: Sequence[int] | None) -> torch.Tensor:
    if input_shape is None:
        return x
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise DataError(f"input_shape must be a non-empty shape of positive sizes, got {shape}.")
    if tuple(x.shape[1:]) == shape:
        return x
    sample = tuple(int(s) for s in x.shape[1:])
    if math.prod(sample) != math.prod(shape):
        raise DataError(
            f"the samples have shape {sample} ({math.prod(sample)} values) but the model "
            f"expects inputs of shape {shape} ({math.prod(shape)} values); choose a dataset "
            "made for this model."
        )
    return x.reshape(x.shape[0], *shape)


def _numeric(arr: np.ndarray | torch.Tensor, what: str, source: str) -> np.ndarray:
    if isinstance(arr, torch.Tensor):
        if arr.is_complex():
            raise DataError(f"{source}: {what} is complex ({arr.dtype}); real values are needed.")
        if arr.layout != torch.strided or arr.is_quantized:
            raise DataError(
                f"{source}: {what} is a {str(arr.layout).removeprefix('torch.')} "
                f"{str(arr.dtype).removeprefix('torch.')} tensor; save a dense tensor of numbers."
            )
        arr = arr.detach().cpu()
        if arr.dtype.is_floating_point and arr.dtype not in (torch.float32, torch.float64):
            arr = arr.float()  # bfloat16, float8 ...: no numpy dtype
        try:
            arr = arr.numpy()
        except (TypeError, RuntimeError) as exc:
            raise DataError(
                f"{source}: {what} has dtype {str(arr.dtype).removeprefix('torch.')}, which "
                "svdscope cannot read as numbers; save float32 values."
            ) from exc
    if arr.dtype == np.bool_:
        arr = arr.astype(np.int64)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise DataError(
            f"{source}: {what} must be numeric, got dtype {arr.dtype}; store numbers only."
        )
    return arr


def _finite(arr: np.ndarray, what: str, source: str) -> None:
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(
                f"{source}: {what} contains {int(bad.sum())} NaN or infinite value(s), the "
                f"first at index {first}; clean the data first."
            )


def _as_inputs(
    x: np.ndarray | torch.Tensor, source: str, input_shape: Sequence[int] | None
) -> torch.Tensor:
    arr = _numeric(x, "x", source)
    if arr.size == 0:
        raise DataError(f"{source}: the inputs are empty (shape {arr.shape}); nothing to analyse.")
    if arr.ndim == 0:
        raise DataError(f"{source}: the inputs are a single number; store samples as (N, ...).")
    _finite(arr, "x", source)
    if arr.ndim == 1:
        n = arr.shape[0]
        if input_shape is not None and math.prod(input_shape) == n:
            arr = arr.reshape(1, n)
        elif input_shape is not None and math.prod(input_shape) == 1:
            arr = arr.reshape(n, 1)
        else:
            raise DataError(
                f"{source}: the inputs are 1-D (shape ({n},)); store them as (N, features): "
                f"reshape(-1, 1) if they are {n} samples of one value, reshape(1, -1) if "
                "they are one sample."
            )
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    return _fit_shape(t, input_shape)


def _as_targets(y: np.ndarray | torch.Tensor, n: int, source: str) -> torch.Tensor:
    arr = _numeric(y, "y", source)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 0 or arr.shape[0] != n:
        raise DataError(
            f"{source}: {n} inputs but labels of shape {tuple(arr.shape)}; store one label "
            "(or target) per sample."
        )
    _finite(arr, "y", source)
    if np.issubdtype(arr.dtype, np.integer):
        if arr.ndim != 1:
            raise DataError(
                f"{source}: integer labels must be one per sample, shape ({n},), got "
                f"{tuple(arr.shape)}."
            )
        return torch.from_numpy(arr.astype(np.int64))
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def _dataset(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor | None,
    *,
    name: str,
    input_shape: Sequence[int] | None,
    classes: list[str] | None = None,
    notes: tuple[str, ...] = (),
) -> Dataset:
    xt = _as_inputs(x, name, input_shape)
    yt = None if y is None else _as_targets(y, xt.shape[0], name)
    return Dataset(xt, yt, name, classes, notes)


# ----------------------------------------------------------------------------- readers
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def _check_magic(path: Path, magic: bytes, kind: str) -> None:
    """numpy reads any file that is not an .npy/.npz as a pickle (and refuses it): name the
    real problem instead, a file that is not of the expected kind at all."""
    try:
        with path.open("rb") as f:
            head = f.read(len(magic))
    except OSError as exc:
        raise LoadError(f"{path.name} cannot be read ({exc}).") from exc
    if head != magic and not (kind == ".npz" and head == b"PK\x05\x06"):  # empty zip
        raise LoadError(
            f"{path.name} is not a {kind} file (it does not start with the {kind} signature); "
            "it may be truncated, corrupt or of another format."
        )


def _read_npy(path: Path, labels: str | None, input_shape: Sequence[int] | None) -> Dataset:
    _check_magic(path, _NPY_MAGIC, ".npy")
    if labels is not None:
        raise DataError(
            f"{path.name}: a .npy file holds one array (the inputs) and no label array; "
            "save inputs and labels together in a .npz (arrays x and y)."
        )
    try:  # memory-mapped: a header that declares more than the file holds is refused
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "python objects" in str(exc).lower():
            raise LoadError(
                f"{path.name} holds Python objects (a pickled array); svdscope never "
                "unpickles data: save a numeric array with numpy.save."
            ) from exc
        raise LoadError(f"{path.name} is not a readable .npy file ({exc}).") from exc
    except Exception as exc:  # numpy's header parser raises TokenError, SyntaxError ...
        raise LoadError(
            f"{path.name} is not a readable .npy file ({type(exc).__name__}: {exc})."
        ) from exc
    try:
        return _dataset(arr, None, name=path.name, input_shape=input_shape)
    finally:
        del arr  # closes the memory map


def _check_npz_members(path: Path, max_bytes: int) -> None:
    """Size the arrays of an ``.npz`` from its directory and headers before numpy unpacks
    (and allocates) them: no zip bomb, no header declaring more data than its member."""
    with open_zip(path, path.name) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        for info in infos:
            member_path(info.filename, path.name)
        check_zip_sizes(infos, path.name, max_bytes=max_bytes, what="arrays")
        for info in infos:
            if not info.filename.endswith(".npy"):
                continue
            try:
                with zf.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _order, dtype = read_header(member)
            except Exception as exc:  # a broken member header: name it
                raise LoadError(
                    f"{path.name}: the array {info.filename!r} is not readable "
                    f"({type(exc).__name__}: {exc})."
                ) from exc
            if dtype.hasobject:
                raise LoadError(
                    f"{path.name} holds Python objects (pickled arrays); svdscope never "
                    "unpickles data: save numeric arrays with numpy.savez."
                )
            declared = math.prod(shape) * dtype.itemsize
            if declared > info.file_size:
                raise LoadError(
                    f"{path.name}: the array {info.filename!r} declares shape {shape} "
                    f"({declared:,} bytes) but holds {info.file_size:,} bytes; the file is "
                    "corrupt."
                )


def _read_npz(
    path: Path, labels: str | None, input_shape: Sequence[int] | None, max_bytes: int
) -> Dataset:
    _check_magic(path, _ZIP_MAGIC, ".npz")
    _check_npz_members(path, max_bytes)
    label_key = labels or "y"
    try:
        with np.load(path, allow_pickle=False) as npz:
            found = list(npz.files)
            if "x" not in found:
                raise LoadError(
                    f"{path.name} has no array named 'x' (it holds: "
                    f"{', '.join(found) or 'nothing'}); save the inputs as x and the labels as "
                    "y, e.g. numpy.savez(path, x=inputs, y=labels)."
                )
            if labels is not None and label_key not in found:
                raise LoadError(
                    f"{path.name} has no label array {label_key!r} (it holds: {', '.join(found)})."
                )
            x = npz["x"]
            y = npz[label_key] if label_key in found else None
    except LoadError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise LoadError(
                f"{path.name} holds Python objects (pickled arrays); svdscope never "
                "unpickles data: save numeric arrays with numpy.savez."
            ) from exc
        raise LoadError(f"{path.name} is not a readable .npz file ({exc}).") from exc
    except Exception as exc:  # zipfile, zlib and numpy's header parser raise many kinds
        raise LoadError(
            f"{path.name} is not a readable .npz file ({type(exc).__name__}: {exc})."
        ) from exc
    return _dataset(x, y, name=path.name, input_shape=input_shape)


def _read_csv(path: Path, labels: str | None, input_shape: Sequence[int] | None) -> Dataset:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path.name} is empty; expected a header row and samples.") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise LoadError(f"{path.name} is not a readable CSV file ({exc}).") from exc
    except Exception as exc:  # the C parser raises others on binary garbage
        raise LoadError(
            f"{path.name} is not a readable CSV file ({type(exc).__name__}: {exc})."
        ) from exc
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    classes: list[str] | None = None
    y = None
    if labels is not None:
        if labels not in columns:
            raise DataError(
                f"{path.name} has no label column {labels!r}; its columns are: "
                f"{', '.join(columns[:20])}{' ...' if len(columns) > 20 else ''}."
            )
        col = frame.pop(labels)
        if col.isna().any():
            row = int(np.flatnonzero(col.isna().to_numpy())[0])
            raise DataError(f"{path.name}: the label column {labels!r} is empty in row {row}.")
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            values = col.to_numpy()
            if np.issubdtype(values.dtype, np.floating) and np.all(values == np.round(values)):
                values = values.astype(np.int64)
            y = values
        else:
            names = col.astype(str)
            classes = sorted(names.unique())
            lookup = {c: i for i, c in enumerate(classes)}
            y = names.map(lookup).to_numpy(dtype=np.int64)
    if frame.shape[1] == 0:
        raise DataError(f"{path.name} has no feature columns besides the labels.")
    if frame.shape[0] == 0:
        raise DataError(f"{path.name} has a header but no samples.")
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        hint = "" if labels else "; if one of them holds the labels, pass labels=<column name>"
        raise DataError(
            f"{path.name}: column(s) {', '.join(repr(c) for c in bad[:10])} are not numeric; "
            f"every feature column must hold numbers{hint}."
        )
    x = frame.to_numpy(dtype=np.float64)
    if np.isnan(x).any():
        row, col_i = (int(i) for i in np.argwhere(np.isnan(x))[0])
        raise DataError(
            f"{path.name}: {int(np.isnan(x).sum())} empty or NaN value(s), the first in row "
            f"{row}, column {frame.columns[col_i]!r}; fill or drop them first."
        )
    return _dataset(x, y, name=path.name, input_shape=input_shape, classes=classes)


def _read_pt(path: Path, labels: str | None, input_shape: Sequence[int] | None) -> Dataset:
    obj = load_weights_only(
        path, instead="save a tensor, or a dict {'x': tensor, 'y': tensor}, with torch.save."
    )
    label_key = labels or "y"
    if isinstance(obj, torch.Tensor):
        if labels is not None:
            raise DataError(
                f"{path.name} holds a single tensor (the inputs), so there is no label "
                f"tensor {labels!r}; save a dict {{'x': inputs, 'y': labels}}."
            )
        x, y = obj, None
    elif isinstance(obj, Mapping):
        keys = [str(k) for k in obj]
        if "x" not in obj or not isinstance(obj["x"], torch.Tensor):
            raise LoadError(
                f"{path.name} holds a dict without a tensor 'x' (keys: "
                f"{', '.join(keys[:20]) or 'none'}); save {{'x': inputs, 'y': labels}}."
            )
        if labels is not None and label_key not in obj:
            raise LoadError(
                f"{path.name} has no label tensor {label_key!r} (keys: {', '.join(keys[:20])})."
            )
        x, y = obj["x"], obj.get(label_key)
        if y is not None and not isinstance(y, torch.Tensor):
            raise LoadError(f"{path.name}: {label_key!r} is not a tensor.")
    elif (
        isinstance(obj, list | tuple)
        and len(obj) == 2
        and all(isinstance(t, torch.Tensor) for t in obj)
    ):
        x, y = obj
    else:
        raise LoadError(
            f"{path.name} holds a {type(obj).__name__}, not inputs; save a tensor, a dict "
            "{'x': inputs, 'y': labels} or a pair (inputs, labels) with torch.save."
        )
    return _dataset(x, y, name=path.name, input_shape=input_shape)


# ----------------------------------------------------------------------------- zip
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
    return tuple(int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name))


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


def _read_zip(
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
    return _dataset(
        x, y, name=archive, input_shape=input_shape, classes=classes, notes=tuple(notes)
    )


# ----------------------------------------------------------------------------- API
def load_dataset(
    path: str | Path,
    *,
    labels: str | None = None,
    input_shape: Sequence[int] | None = None,
    name: str | None = None,
    max_images: int = MAX_IMAGES,
    max_bytes: int = MAX_UNZIPPED_BYTES,
) -> Dataset:
    """Read a dataset file into a :class:`Dataset` (format from the suffix; see module doc).

    ``labels``: the label column of a CSV, or the label array/key of a ``.npz``/``.pt``
    (default ``y``). ``input_shape``: one sample's shape for the model (e.g. ``(64,)`` or
    ``(1, 8, 8)``); inputs are reshaped to (N, *input_shape) when the number of values per
    sample matches, else ``DataError`` naming both shapes. ``name`` overrides the display
    name (default: the file name). ``max_images``/``max_bytes`` cap what a ``.zip`` may
    hold and decompress (``max_bytes`` also caps the arrays of a ``.npz``).

    Invariant (checked in tests): ``x`` is float32 (N, ...), finite, and ``len(y) == N``.

    Raises ``LoadError`` for missing, unsupported, corrupt or unsafe files (pickled code,
    zip entries outside the archive, zip bombs) and ``DataError`` for unusable contents
    (wrong shapes, NaN/Inf, non-numeric columns, empty data), each with a sentence naming
    the problem.
    """
    p = Path(path)
    if not p.is_file():
        raise LoadError(f"no such dataset file: {p}")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        ds = _read_npy(p, labels, input_shape)
    elif suffix == ".npz":
        ds = _read_npz(p, labels, input_shape, max_bytes)
    elif suffix == ".csv":
        ds = _read_csv(p, labels, input_shape)
    elif suffix in (".pt", ".pth"):
        ds = _read_pt(p, labels, input_shape)
    elif suffix == ".zip":
        ds = _read_zip(p, labels, input_shape, max_images=max_images, max_bytes=max_bytes)
    else:
        raise LoadError(
            f"{p.name}: unsupported dataset file; svdscope reads .npy, .npz (arrays x, y), "
            ".csv (with a header), .pt tensors and .zip folders of PNG/JPEG images."
        )
    if name is not None:
        ds = Dataset(ds.x, ds.y, name, ds.classes, ds.notes)
    return ds


def zoo_dataset(name: str, *, split: str = "test", n: int | None = None, seed: int = 0) -> Dataset:
    """The data an example network was made for, from its zoo generator.

    ``split`` "train" or "test" (digits also "all"); ``n`` a subset size (deernet: default
    1000 traces). Inputs have the network's input shape (digits-cnn: (N, 1, 8, 8)); ``y``
    is the class index for the digits networks and the target distance distribution
    (N, 256) for deernet. Invariant: ``x.shape[1:] == zoo.get(name).input_shape``.
    Raises ``LoadError`` for an unknown name, ``DataError`` for a bad split or ``n``.
    """
    from .. import zoo

    entry = zoo.get(name)
    kwargs: dict[str, object] = {"split": split, "seed": seed}
    if n is not None:
        kwargs["n"] = n
    x, y = entry.make_data(**kwargs)
    return _dataset(x, y, name=f"{name} ({split})", input_shape=entry.input_shape)
