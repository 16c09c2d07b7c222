"""Array dataset readers: ``.npy``, ``.npz``, ``.csv``, ``.pt`` (layouts: :mod:`.datasets`).

Nothing here unpickles code: ``.npy``/``.npz`` with ``allow_pickle=False`` (a ``.npy``
memory-mapped), ``.npz`` members sized before numpy unpacks them, ``.pt`` through
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from ..exceptions import DataError, LoadError
from ._archives import check_zip_sizes, member_path, open_zip
from ._torchload import load_weights_only
from .dataset_base import Dataset, make_dataset

__all__ = ["read_csv", "read_npy", "read_npz", "read_pt"]


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


def read_npy(path: Path, labels: str | None, input_shape: Sequence[int] | None) -> Dataset:
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
        return make_dataset(arr, None, name=path.name, input_shape=input_shape)
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


def read_npz(
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
    return make_dataset(x, y, name=path.name, input_shape=input_shape)


def read_csv(path: Path, labels: str | None, input_shape: Sequence[int] | None) -> Dataset:
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
    return make_dataset(x, y, name=path.name, input_shape=input_shape, classes=classes)


def read_pt(path: Path, labels: str | None, input_shape: Sequence[int] | None) -> Dataset:
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
    return make_dataset(x, y, name=path.name, input_shape=input_shape)
