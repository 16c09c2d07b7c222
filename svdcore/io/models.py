"""Model readers: safetensors (single, sharded, folder), PyTorch state_dicts, torch.export.

Security: nothing here unpickles code. State dicts go through
``torch.load(..., weights_only=True)``; safetensors holds tensors only; ``.pt2`` archives go
through ``torch.export.load`` only after `_archives.check_export_archive` has refused every
member torch would unpickle or run (pickled weights, AOTInductor libraries, names that
would become code), and their graphs are checked operator by operator before they run.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from ..attention import attach_attention, read_transformer_config
from ..exceptions import DataError, ExecutionError, LoadError
from ..lora import is_adapter_folder, lora_network
from ..network import Network
from ..sources import DictSource, SafetensorsSource
from ._archives import check_export_archive, check_export_graph, training_mode_ops
from ._torchload import load_weights_only
from .chain import build_chain

__all__ = ["FORMATS", "ModelFormat", "detect_format", "load_model"]

ModelFormat = Literal["safetensors", "state_dict", "torch_export", "onnx"]
FORMATS: tuple[str, ...] = ("safetensors", "state_dict", "torch_export", "onnx")
_SUFFIXES: dict[str, ModelFormat] = {
    ".safetensors": "safetensors",
    ".pt": "state_dict",
    ".pth": "state_dict",
    ".bin": "state_dict",
    ".ckpt": "state_dict",
    ".pt2": "torch_export",
    ".onnx": "onnx",
}


def _quiet_export_log(record: logging.LogRecord) -> bool:
    """torch.export.load logs a traceback for every unreadable archive before raising; the
    LoadError that follows says it in one sentence, so the traceback is dropped."""
    return not str(record.msg).startswith("Ran into the following error when deserializing")


logging.getLogger("torch.export").addFilter(_quiet_export_log)
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "weights")


def _sniff(path: Path) -> ModelFormat | None:
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError:
        return None
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except zipfile.BadZipFile:
            return None
        if any(n.endswith("archive_format") or "/models/" in n for n in names):
            return "torch_export"
        return "state_dict"
    return None


def detect_format(path: Path) -> ModelFormat:
    """Format of ``path`` from its suffix (folders and ``.index.json`` are safetensors)."""
    if path.is_dir() or path.name.endswith(".index.json"):
        return "safetensors"
    fmt = _SUFFIXES.get(path.suffix.lower()) or _sniff(path)
    if fmt is None:
        raise LoadError(
            f"{path.name}: unsupported model file; svdscope reads .safetensors (or a folder / "
            ".index.json of shards), state_dict files .pt/.pth/.bin, torch.export .pt2 and "
            "ONNX .onnx (weights only)."
        )
    return fmt


def _safetensors_source(path: Path) -> SafetensorsSource:
    if path.is_dir():
        indexes = sorted(path.glob("*.safetensors.index.json"))
        if indexes:
            return _safetensors_source(indexes[0])
        files = sorted(path.glob("*.safetensors"))
        if not files:
            raise LoadError(f"folder {path.name} holds no .safetensors files.")
        return SafetensorsSource(files)
    if path.name.endswith(".index.json"):
        try:
            index = json.loads(path.read_text())
            weight_map: dict[str, str] = index["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LoadError(
                f"{path.name} is not a safetensors index (a JSON object with 'weight_map')."
            ) from exc
        shard_names = sorted(set(weight_map.values()))
        shards = []
        for shard in shard_names:
            if Path(shard).name != shard:
                raise LoadError(f"{path.name} names a shard outside its folder: {shard!r}.")
            f = path.parent / shard
            if not f.is_file():
                raise LoadError(f"{path.name} lists shard {shard!r}, which is missing.")
            shards.append(f)
        key_to_file = {k: path.parent / v for k, v in weight_map.items()}
        return SafetensorsSource(shards, key_to_file=key_to_file)
    return SafetensorsSource([path])


def _flatten(obj: object, prefix: str, out: dict[str, torch.Tensor]) -> None:
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            _flatten(v, f"{prefix}.{i}" if prefix else str(i), out)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    obj = load_weights_only(
        path, instead="save `model.state_dict()` with torch.save, or use safetensors."
    )
    if isinstance(obj, Mapping):
        tensor_vals = [v for v in obj.values() if isinstance(v, torch.Tensor)]
        if not tensor_vals:
            for key in _WRAPPER_KEYS:
                if isinstance(obj.get(key), Mapping):
                    obj = obj[key]
                    break
    tensors: dict[str, torch.Tensor] = {}
    _flatten(obj, "", tensors)
    if not tensors:
        raise LoadError(f"{path.name} holds no tensors; expected a state_dict.")
    nested = next((k for k, t in tensors.items() if t.is_nested), None)
    if nested is not None:
        raise LoadError(
            f"{path.name}: {nested!r} is a nested (ragged) tensor, which has no matrix shape; "
            "save regular tensors."
        )
    return tensors


def _load_export(
    path: Path,
) -> tuple[nn.Module, dict[str, torch.Tensor], tuple[int, ...], int | None]:
    check_export_archive(path)  # nothing torch.export.load would unpickle or run
    try:
        ep = torch.export.load(str(path))
    except Exception as exc:
        raise LoadError(
            f"{path.name} is not a readable torch.export archive ({type(exc).__name__}: {exc})."
        ) from exc
    check_export_graph(ep, path.name)  # ATen operators only, before anything runs it
    tensors = {k: v.detach() for k, v in ep.state_dict.items() if isinstance(v, torch.Tensor)}
    try:
        module = torch.export.unflatten(ep)
    except Exception:
        module = ep.module()
    input_shape: tuple[int, ...] = ()
    static_batch: int | None = None
    user_inputs = set(ep.graph_signature.user_inputs)
    for node in ep.graph.nodes:
        val = node.meta.get("val")
        if node.op == "placeholder" and node.name in user_inputs and hasattr(val, "shape"):
            dims = list(val.shape)
            if dims:
                input_shape = tuple(int(d) if isinstance(d, int) else -1 for d in dims[1:])
                static_batch = dims[0] if isinstance(dims[0], int) else None
            break
    if -1 in input_shape:
        input_shape = ()
    training = training_mode_ops(ep)
    if training:
        module.register_forward_pre_hook(partial(_refuse_training_mode, path.name, training))
    return module, tensors, input_shape, static_batch


def _refuse_training_mode(archive: str, what: list[str], *_: Any) -> None:
    """A forward pre-hook on a training-mode export: every run stops with the reason (its
    weights stay viewable)."""
    raise ExecutionError(
        f"{archive} was exported in training mode ({'; '.join(what)}), so one sample's output "
        "depends on the rest of its batch or on chance, and svdscope's per-sample analyses "
        "would be wrong; call model.eval() before torch.export.export and save it again."
    )


def _with_layers(net: Network) -> Network:
    """``net``, or ``LoadError`` when none of its tensors is a matrix (rank >= 2)."""
    if not net.layers:
        count = len(net._source.keys())
        raise LoadError(
            f"{net.name} holds {count} tensor(s) but none with two or more dimensions (only "
            "scalars and vectors, such as biases); svdscope shows weight matrices, so there "
            "is nothing to show."
        )
    return net


def _with_heads(net: Network, path: Path) -> Network:
    """A Hugging Face folder's ``config.json`` (read as JSON, never run): one matrix view
    per attention head (:func:`svdcore.attention.attach_attention`)."""
    folder = path if path.is_dir() else path.parent if path.name.endswith(".index.json") else None
    try:
        config = read_transformer_config(folder) if folder is not None else None
    except DataError as err:
        raise LoadError(f"{path.name}: {err}") from None
    if config is not None:
        attach_attention(net, config)
    return net


def load_model(
    path: str | Path,
    *,
    format: ModelFormat | None = None,
    activation: str | None = None,
    output_activation: str = "identity",
    name: str | None = None,
) -> Network:
    """Open a model file or folder as a :class:`Network`.

    - ``safetensors``: a file, a folder of shards, or a ``*.safetensors.index.json``
      (Hugging Face layout); lazy: only headers are read until a layer is viewed. A
      folder's ``config.json`` adds per-head views of the attention projections; a PEFT
      adapter folder (``adapter_config.json``) opens as its updates ΔW = B·A·scaling
      (:func:`svdcore.lora.lora_network`).
    - ``state_dict``: ``.pt/.pth/.bin`` via ``torch.load(weights_only=True)``; nested
      checkpoint dicts are flattened with dotted keys.
    - ``torch_export``: ``.pt2`` from ``torch.export.save``: executable.
    - ``onnx``: ``.onnx``: the graph's initializers (and Constant tensors), weights only;
      the protobuf is parsed, never run (:class:`svdcore.io.onnx_source.OnnxSource`).

    Weight-only formats give a Network without forward. With ``activation`` (``"relu"``,
    ``"tanh"``, ``"selu"`` ...), a chain of Linear layers becomes executable.
    Raises ``LoadError`` with a sentence naming the problem for any unreadable input.
    """
    p = Path(path)
    if not p.exists():
        raise LoadError(f"no such model file or folder: {p}")
    fmt = format or detect_format(p)
    if fmt not in FORMATS:
        raise LoadError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    label = name or p.name
    if fmt == "torch_export":
        module, _tensors, input_shape, static_batch = _load_export(p)
        net = Network.from_module(module, input_shape=input_shape or None, name=label)
        net.origin = str(p)
        net.static_batch = static_batch
        return _with_layers(net)
    if fmt == "onnx":
        from .onnx_source import OnnxSource

        source = OnnxSource(p)
        if activation is None:
            return _with_layers(Network(source, name=label, origin=str(p)))
        tensors = {k: source.load(k) for k in source.keys()}  # noqa: SIM118
    elif fmt == "safetensors":
        if activation is None and is_adapter_folder(p):  # a PEFT adapter: one ΔW per module
            return _with_layers(lora_network(p, name=name))
        source = _safetensors_source(p)
        if activation is None:
            return _with_heads(_with_layers(Network(source, name=label, origin=str(p))), p)
        tensors = {k: source.load(k) for k in source.keys()}  # noqa: SIM118
    else:
        tensors = _read_state_dict(p)
        if activation is None:
            return _with_layers(Network(DictSource(tensors), name=label, origin=str(p)))
    chain = build_chain(tensors, activation=activation, output_activation=output_activation)
    first = next(m for m in chain.modules() if isinstance(m, nn.Linear))
    net = Network.from_module(chain, input_shape=(first.in_features,), name=label)
    net.origin = str(p)
    return net
