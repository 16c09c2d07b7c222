"""Where a Network's tensors come from: lazily from files, or from memory.

A source answers three questions without loading anything heavy: which tensors exist, their
shapes and dtypes (for safetensors: ``safe_open``'s ``keys`` and ``get_slice``). ``load(key)``
reads one tensor (for safetensors: just that tensor's bytes, at the offset its header gives,
without parsing the header again: a file of 10^4 tensors is listed once and each tensor
read in microseconds; see :func:`_header_offsets` for why not through ``safe_open``).
"""

from __future__ import annotations

import json
import math
import re
import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from .exceptions import LoadError

__all__ = ["DictSource", "SafetensorsSource", "TensorMeta", "TensorSource", "natural_key"]


def natural_key(name: str) -> list:
    """Sort key that orders digit runs numerically: ``fc2`` < ``fc10``."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", name)]


@dataclass(frozen=True)
class TensorMeta:
    """Shape and dtype name (torch spelling, e.g. ``"float32"``, ``"bfloat16"``) of a tensor."""

    shape: tuple[int, ...]
    dtype: str


class TensorSource(Protocol):
    """What :class:`svdcore.network.Network` needs from a tensor store."""

    def keys(self) -> list[str]: ...

    def meta(self, key: str) -> TensorMeta: ...

    def load(self, key: str) -> torch.Tensor: ...


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class DictSource:
    """Tensors already in memory (a state_dict, or a module's parameters and buffers)."""

    def __init__(self, tensors: Mapping[str, torch.Tensor]):
        self._tensors = {k: v.detach() for k, v in tensors.items()}

    def keys(self) -> list[str]:
        return list(self._tensors)

    def meta(self, key: str) -> TensorMeta:
        """Shape and dtype; a sparse (or other non-strided) tensor's dtype names its layout
        too (``"float32 sparse_coo"``), so that it is listed but not viewed as a matrix."""
        t = self._tensors[key]
        dtype = _dtype_name(t.dtype)
        if t.layout != torch.strided:
            dtype += " " + str(t.layout).removeprefix("torch.")
        return TensorMeta(tuple(int(s) for s in t.shape), dtype)

    def load(self, key: str) -> torch.Tensor:
        return self._tensors[key]


# safetensors dtype names -> torch spelling
_ST_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U8": "uint8",
    "BOOL": "bool",
}


# safetensors dtype names -> torch dtypes read directly from the file (little-endian)
_ST_TORCH = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def _header_offsets(path: Path) -> dict[str, tuple[int, int]]:
    """Absolute (start, end) byte offsets of each tensor of a safetensors file, from its
    header (already validated by ``safe_open``); {} when it cannot be read.

    Why this small reader beside ``safe_open`` (which lists keys, shapes and dtypes above):
    ``safe_open`` exposes no data offsets, and its two ways to read one tensor both break a
    property the tests hold. Opening it per read parses the whole header again (a 10^4-tensor
    model, tests/svdcore/io/test_hostile_files.py). Keeping a handle open holds a memory map
    of the file, and a file truncated under a map raises SIGBUS on access, which kills the
    server instead of giving a LoadError. Reading the bytes at their offset does neither.
    """
    try:
        with path.open("rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
        base = 8 + length
        return {
            key: (base + int(meta["data_offsets"][0]), base + int(meta["data_offsets"][1]))
            for key, meta in header.items()
            if key != "__metadata__"
        }
    except Exception:  # the library's reader is used instead
        return {}


class SafetensorsSource:
    """One or more ``.safetensors`` files, read lazily.

    Only the headers are read at construction (validated by ``safetensors.safe_open``);
    ``load`` reads just the requested tensor's bytes at their offset (or through
    ``safe_open`` for dtypes torch cannot take from raw bytes).
    """

    def __init__(self, files: list[Path], *, key_to_file: Mapping[str, Path] | None = None):
        from safetensors import safe_open

        self._files = [Path(f) for f in files]
        self._where: dict[str, Path] = {}
        self._meta: dict[str, TensorMeta] = {}
        self._raw: dict[str, str] = {}  # safetensors dtype name per tensor
        self._offsets: dict[str, tuple[int, int]] = {}
        for f in self._files:
            try:
                with safe_open(str(f), framework="pt") as handle:
                    for key in handle.keys():  # noqa: SIM118 - safe_open has no __iter__
                        sl = handle.get_slice(key)
                        shape = tuple(int(s) for s in sl.get_shape())
                        dtype = _ST_DTYPES.get(sl.get_dtype(), sl.get_dtype().lower())
                        if key in self._where:
                            raise LoadError(
                                f"tensor {key!r} appears in both {self._where[key].name} and "
                                f"{f.name}; a sharded checkpoint must store each tensor once."
                            )
                        self._where[key] = f
                        self._meta[key] = TensorMeta(shape, dtype)
                        self._raw[key] = sl.get_dtype()
            except LoadError:
                raise
            except Exception as exc:  # safetensors raises its own error types and OSError
                raise LoadError(
                    f"{f.name} is not a readable safetensors file ({exc}); "
                    "check that the upload finished and the file is not truncated."
                ) from exc
            offsets = _header_offsets(f)
            self._offsets.update((k, v) for k, v in offsets.items() if self._where.get(k) == f)
        if key_to_file is not None:
            missing = sorted(set(key_to_file) - set(self._where))
            if missing:
                raise LoadError(
                    f"the index lists {len(missing)} tensor(s) not found in its shards, "
                    f"e.g. {missing[0]!r}; some shard files are missing or stale."
                )

    def keys(self) -> list[str]:
        """Tensor names in natural order (``layer.2`` before ``layer.10``): files store them
        sorted as strings, which is no order a reader expects."""
        return sorted(self._where, key=natural_key)

    def meta(self, key: str) -> TensorMeta:
        return self._meta[key]

    def _read_raw(self, key: str) -> torch.Tensor | None:
        """The tensor read at its offset, or None to use safe_open instead."""
        dtype = _ST_TORCH.get(self._raw.get(key, ""))
        span = self._offsets.get(key)
        if dtype is None or span is None or sys.byteorder != "little":
            return None
        shape = self._meta[key].shape
        start, end = span
        nbytes = math.prod(shape) * dtype.itemsize
        if end - start != nbytes:
            return None  # let safetensors say what is wrong
        buffer = bytearray(nbytes)
        with self._where[key].open("rb") as f:
            f.seek(start)
            if f.readinto(buffer) != nbytes:
                raise OSError(f"the file ends before tensor {key!r} does (truncated)")
        if nbytes == 0:
            return torch.empty(shape, dtype=dtype)
        return torch.frombuffer(buffer, dtype=dtype).reshape(shape)

    def load(self, key: str) -> torch.Tensor:
        from safetensors import safe_open

        path = self._where[key]
        try:
            tensor = self._read_raw(key)
            if tensor is not None:
                return tensor
            with safe_open(str(path), framework="pt") as handle:
                return handle.get_tensor(key)
        except Exception as exc:
            raise LoadError(
                f"tensor {key!r} could not be read from {path.name} ({exc}); the file may "
                "have changed or been truncated since it was opened."
            ) from exc
