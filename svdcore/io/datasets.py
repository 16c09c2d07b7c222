"""Dataset readers: ``.npy``, ``.npz``, ``.csv``, ``.pt`` and ``.zip`` folders of images.

Every reader returns a :class:`Dataset`: inputs ``x`` (N, ...) float32 and optional targets
``y`` (N,) int64 class labels or float32 targets (N, ...). Values are kept as stored
(cast to float32), except images, which are scaled to [0, 1].

Security (SECURITY.md, promise 1: no code from an upload ever runs): nothing here unpickles
code. ``.npy``/``.npz`` are read with ``allow_pickle=False`` (a ``.npy`` memory-mapped, so a
header that declares more data than the file holds is refused instead of allocated); ``.pt``
through
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

from collections.abc import Sequence
from pathlib import Path

from ..exceptions import LoadError
from .array_readers import read_csv, read_npy, read_npz, read_pt
from .dataset_base import Dataset, make_dataset
from .image_zip import MAX_IMAGE_PIXELS, MAX_IMAGES, MAX_UNZIPPED_BYTES, read_zip

__all__ = [
    "DATASET_SUFFIXES",
    "MAX_IMAGES",
    "MAX_IMAGE_PIXELS",
    "MAX_UNZIPPED_BYTES",
    "Dataset",
    "load_dataset",
    "make_dataset",
]

DATASET_SUFFIXES: tuple[str, ...] = (".npy", ".npz", ".csv", ".pt", ".pth", ".zip")


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
        ds = read_npy(p, labels, input_shape)
    elif suffix == ".npz":
        ds = read_npz(p, labels, input_shape, max_bytes)
    elif suffix == ".csv":
        ds = read_csv(p, labels, input_shape)
    elif suffix in (".pt", ".pth"):
        ds = read_pt(p, labels, input_shape)
    elif suffix == ".zip":
        ds = read_zip(p, labels, input_shape, max_images=max_images, max_bytes=max_bytes)
    else:
        raise LoadError(
            f"{p.name}: unsupported dataset file; svdscope reads .npy, .npz (arrays x, y), "
            ".csv (with a header), .pt tensors and .zip folders of PNG/JPEG images."
        )
    if name is not None:
        ds = Dataset(ds.x, ds.y, name, ds.classes, ds.notes)
    return ds
