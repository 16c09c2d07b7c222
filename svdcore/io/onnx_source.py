"""ONNX models as weight-only networks: the graph's initializers (and Constant nodes).

An ``.onnx`` file is a protobuf message: ``onnx.load`` parses it, nothing in it is run.
Tensor data kept in external files (models over 2 GB) is read only from files inside the
model's own folder; a location that leaves it (``..``, an absolute path) is refused.
Tensors are converted one at a time, when a layer is viewed (the protobuf itself is read
whole, as ONNX requires).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..exceptions import LoadError
from ..sources import TensorMeta

__all__ = ["OnnxSource"]

# onnx.TensorProto.DataType -> torch's spelling (svdcore.sources uses these names)
_ONNX_DTYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    4: "uint16",
    5: "int16",
    6: "int32",
    7: "int64",
    8: "string",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
    14: "complex64",
    15: "complex128",
    16: "bfloat16",
}


def _text(name: Any) -> str:
    """A protobuf string field; one that is not valid UTF-8 comes back as bytes."""
    return name if isinstance(name, str) else bytes(name).decode("utf-8", "replace")


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as err:  # pragma: no cover - onnx is a dependency
        raise LoadError("reading .onnx files needs the 'onnx' package (pip install onnx).") from err
    return onnx


class OnnxSource:
    """The initializers of an ONNX graph (and of Constant nodes), by name, in graph order."""

    def __init__(self, path: str | Path):
        onnx = _onnx()
        self.path = Path(path)
        self._folder = self.path.resolve().parent
        try:
            model = onnx.load(str(self.path), load_external_data=False)
        except Exception as err:  # DecodeError, truncated files, not protobuf at all
            raise LoadError(
                f"{self.path.name} is not a readable ONNX model ({type(err).__name__}: {err})."
            ) from err
        tensors: dict[str, Any] = {}
        graph = model.graph
        for init in graph.initializer:
            tensors[_text(init.name)] = init
        for node in graph.node:
            if node.op_type != "Constant" or not node.output:
                continue
            for attr in node.attribute:
                if attr.name == "value" and attr.HasField("t"):
                    tensors.setdefault(_text(node.output[0]), attr.t)
        if not tensors:
            raise LoadError(
                f"{self.path.name} is an ONNX model without weights (no initializers or "
                "constant tensors in its graph)."
            )
        self._tensors: Mapping[str, Any] = tensors

    def keys(self) -> list[str]:
        return list(self._tensors)

    def meta(self, key: str) -> TensorMeta:
        t = self._tensors[key]
        dtype = _ONNX_DTYPES.get(int(t.data_type), f"onnx type {int(t.data_type)}")
        return TensorMeta(tuple(int(d) for d in t.dims), dtype)

    def _check_external(self, key: str, t: Any) -> None:
        for entry in t.external_data:
            if entry.key != "location":
                continue
            target = (self._folder / entry.value).resolve()
            if Path(entry.value).is_absolute() or self._folder not in target.parents:
                raise LoadError(
                    f"tensor {key!r} of {self.path.name} keeps its data in {entry.value!r}, "
                    "outside the model's folder; svdscope reads external data only next to "
                    "the model."
                )
            if not target.is_file():
                raise LoadError(
                    f"tensor {key!r} of {self.path.name} keeps its data in {entry.value!r}, "
                    "which is missing; upload the folder with the model and its data files."
                )

    def load(self, key: str) -> torch.Tensor:
        from onnx import numpy_helper

        t = self._tensors[key]
        self._check_external(key, t)
        try:
            array = numpy_helper.to_array(t, base_dir=str(self._folder))
        except Exception as err:
            raise LoadError(
                f"tensor {key!r} of {self.path.name} cannot be read ({type(err).__name__}: {err})."
            ) from err
        if array.dtype.kind in "OSU":
            raise LoadError(f"tensor {key!r} of {self.path.name} holds strings, not numbers.")
        return torch.from_numpy(np.array(array, copy=True))
