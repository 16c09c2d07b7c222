"""How a stored tensor becomes a layer of :class:`svdcore.network.Network`: its kind from
its name and shape, its layer name, its default matrix shape and views, and why a tensor
cannot be viewed as a real matrix."""

from __future__ import annotations

import math

from .dequant import FP8_DTYPES

__all__ = ["heuristic_kind", "layer_name", "matrix_shape", "not_viewable_reason", "views"]

FLOAT_DTYPES = {"float16", "bfloat16", "float32", "float64"} | FP8_DTYPES


def heuristic_kind(key: str, shape: tuple[int, ...]) -> str:
    base = key.rsplit(".", 1)[-1]
    lowered = key.lower()
    embedding_names = ("embed", ".wte.", ".wpe.")
    if len(shape) == 2 and base == "weight" and any(e in f".{lowered}" for e in embedding_names):
        return "embedding"
    if base == "weight" or key.endswith("_weight"):
        if len(shape) == 2:
            return "linear"
        if 3 <= len(shape) <= 5:
            return f"conv{len(shape) - 2}d"
    return "tensor"


def layer_name(key: str, taken: set[str]) -> str:
    name = key[: -len(".weight")] if key.endswith(".weight") else key
    return key if name in taken or not name else name


def matrix_shape(kind: str, shape: tuple[int, ...]) -> tuple[int, int]:
    if kind.startswith("conv_transpose"):
        groups_out = shape[1]
        return groups_out, shape[0] * math.prod(shape[2:])
    if len(shape) == 2:
        return shape[0], shape[1]
    return shape[0], math.prod(shape[1:])


def views(kind: str) -> tuple[str, ...]:
    if kind.startswith("conv"):
        return ("unfolded", "kernels")
    return ("default",)


def not_viewable_reason(shape: tuple[int, ...], dtype: str) -> str | None:
    if 0 in shape:
        return f"empty tensor (shape {shape}): nothing to view"
    if dtype.startswith("complex"):
        return f"complex dtype {dtype}: svdscope analyses real weights"
    if " " in dtype:  # DictSource names a non-strided layout: "float32 sparse_coo"
        return f"{dtype} tensor: svdscope views dense weights (save it with .to_dense())"
    if dtype not in FLOAT_DTYPES:
        return f"{dtype} tensor: not floating-point weights (indices, masks or quantized data)"
    return None
