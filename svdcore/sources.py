"""Where a Network's tensors come from: lazily from files, or from memory.

A source answers three questions without loading anything heavy: which tensors exist, their
shapes and dtypes. ``load(key)`` reads one tensor (for safetensors: just that tensor's bytes).
"""

from __future__ import annotations

import re
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
        t = self._tensors[key]
        return TensorMeta(tuple(int(s) for s in t.shape), _dtype_name(t.dtype))

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


class SafetensorsSource:
    """One or more ``.safetensors`` files read lazily with ``safetensors.safe_open``.

    Only the headers are read at construction; ``load`` maps just the requested tensor.
    """

    def __init__(self, files: list[Path], *, key_to_file: Mapping[str, Path] | None = None):
        from safetensors import safe_open

        self._files = [Path(f) for f in files]
        self._where: dict[str, Path] = {}
        self._meta: dict[str, TensorMeta] = {}
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
            except LoadError:
                raise
            except Exception as exc:  # safetensors raises its own error types and OSError
                raise LoadError(
                    f"{f.name} is not a readable safetensors file ({exc}); "
                    "check that the upload finished and the file is not truncated."
                ) from exc
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

    def load(self, key: str) -> torch.Tensor:
        from safetensors import safe_open

        path = self._where[key]
        try:
            with safe_open(str(path), framework="pt") as handle:
                return handle.get_tensor(key)
        except Exception as exc:
            raise LoadError(
                f"tensor {key!r} could not be read from {path.name} ({exc}); the file may "
                "have changed or been truncated since it was opened."
            ) from exc
