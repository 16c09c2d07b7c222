"""LoRA / PEFT adapters: the update ΔW = scaling * B A of every adapted layer, alone or
applied to its base model.

A PEFT adapter folder holds ``adapter_config.json`` (read as JSON, never run) and
``adapter_model.safetensors`` (or ``adapter_model.bin``, read with ``weights_only``). For a
module ``M`` the tensors are ``<prefix>M.lora_A.weight`` (r x in) and
``<prefix>M.lora_B.weight`` (out x r), with ``<prefix>`` usually ``base_model.model.``. The
update of ``M.weight`` (out x in) is

    ΔW = scaling * B @ A,   scaling = lora_alpha / r   (use_rslora: lora_alpha / sqrt(r))

with ``r`` and ``lora_alpha`` per module from ``rank_pattern`` / ``alpha_pattern`` where they
name it (PEFT matches a pattern key against the end of the module name), and ΔW transposed
for layers stored (in, out) (``fan_in_fan_out``: GPT-2's Conv1D). ΔW is computed lazily, one
layer at a time, in float32 from float64 products (r is small: the cost is out * in * r).

- :func:`lora_network` opens the adapter alone: one layer per adapted module, named as in
  the base model (``model.layers.0.self_attn.q_proj``), its matrix ΔW (rank <= r).
- :func:`apply_lora` gives the base model with every adapted weight replaced by
  W + ΔW (the merged model), every other tensor the base's own, all lazily.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .exceptions import DataError, LoadError
from .network import Network
from .sources import DictSource, SafetensorsSource, TensorMeta, TensorSource

__all__ = [
    "ADAPTER_CONFIG",
    "LoraAdapter",
    "LoraModule",
    "adapter_of",
    "apply_lora",
    "is_adapter_folder",
    "lora_network",
    "read_adapter",
]

ADAPTER_CONFIG = "adapter_config.json"

_A, _B = ".lora_A.weight", ".lora_B.weight"
_PREFIXES = ("base_model.model.", "base_model.")


@dataclass(frozen=True)
class LoraModule:
    """One adapted module: its base weight key, the adapter's A and B keys, r and scaling."""

    module: str
    weight_key: str
    a_key: str
    b_key: str
    r: int
    scaling: float


@dataclass(frozen=True)
class LoraAdapter:
    """An adapter folder: its modules (in file order), tensors and config."""

    path: Path
    modules: tuple[LoraModule, ...]
    source: TensorSource
    fan_in_fan_out: bool
    config: Mapping[str, Any]

    def delta(self, module: LoraModule, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """ΔW of ``module`` in the layout its base weight is stored in: (out x in), or
        (in x out) for ``fan_in_fan_out`` (Conv1D)."""
        A = self.source.load(module.a_key).to(torch.float64)
        B = self.source.load(module.b_key).to(torch.float64)
        delta = module.scaling * (B @ A)
        return (delta.T if self.fan_in_fan_out else delta).to(dtype).contiguous()


def is_adapter_folder(path: str | Path) -> bool:
    """True for a folder holding a PEFT ``adapter_config.json``."""
    p = Path(path)
    return p.is_dir() and (p / ADAPTER_CONFIG).is_file()


def _pattern(patterns: Mapping[str, Any], module: str, default: Any) -> Any:
    """PEFT's rule: the first key that matches the end of the module name (as a regex)."""
    for key, value in patterns.items():
        try:
            hit = re.fullmatch(rf"(.*\.)?{key}", module) is not None
        except re.error:
            hit = module == key or module.endswith(f".{key}")
        if hit:
            return value
    return default


def _positive(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise DataError(f"adapter_config.json: {what} must be a positive number, got {value!r}.")
    return float(value)


def read_adapter(path: str | Path) -> LoraAdapter:
    """The PEFT adapter in folder ``path`` (module docstring). Raises ``LoadError`` for a
    folder without ``adapter_config.json`` or adapter weights, a config that is not LoRA,
    and ``DataError`` for an A without its B, or shapes that do not chain with r."""
    folder = Path(path)
    cfg_path = folder / ADAPTER_CONFIG
    if not cfg_path.is_file():
        raise LoadError(f"{folder} has no {ADAPTER_CONFIG}: not a PEFT adapter folder.")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LoadError(f"{cfg_path} is not readable JSON: {err}") from None
    if not isinstance(cfg, dict):
        raise LoadError(f"{cfg_path} must hold a JSON object.")
    kind = str(cfg.get("peft_type", "LORA")).upper()
    if kind not in ("LORA", "ADALORA"):
        raise LoadError(f"{cfg_path}: peft_type {kind} is not LoRA; svdscope reads LoRA adapters.")
    weights = folder / "adapter_model.safetensors"
    if weights.is_file():
        source: TensorSource = SafetensorsSource([weights])
    elif (folder / "adapter_model.bin").is_file():
        from .io._torchload import load_weights_only

        state = load_weights_only(folder / "adapter_model.bin", instead="adapter_model.safetensors")
        if not isinstance(state, Mapping):
            raise LoadError("adapter_model.bin does not hold a dict of tensors.")
        source = DictSource({str(k): v for k, v in state.items() if isinstance(v, torch.Tensor)})
    else:
        raise LoadError(f"{folder} has no adapter_model.safetensors (or .bin).")
    r_default = _positive(cfg.get("r", 8), "r")
    alpha_default = cfg.get("lora_alpha", r_default)
    rslora = cfg.get("use_rslora") is True
    keys = source.keys()
    key_set = set(keys)
    modules = []
    for key in keys:
        if not key.endswith(_A):
            continue
        stem = key[: -len(_A)]
        b_key = stem + _B
        if b_key not in key_set:
            raise DataError(f"the adapter has {key} but not its {b_key}.")
        module = stem
        for prefix in _PREFIXES:
            if module.startswith(prefix):
                module = module[len(prefix) :]
                break
        r_shape = source.meta(key).shape[0]
        r = _positive(_pattern(cfg.get("rank_pattern") or {}, module, r_default), "r")
        alpha = _positive(
            _pattern(cfg.get("alpha_pattern") or {}, module, alpha_default), "lora_alpha"
        )
        if int(r) != r_shape or source.meta(b_key).shape[1] != r_shape:
            raise DataError(
                f"{module}: lora_A is {source.meta(key).shape} and lora_B "
                f"{source.meta(b_key).shape}; they must chain through r = {int(r)}."
            )
        scaling = alpha / math.sqrt(r) if rslora else alpha / r
        modules.append(LoraModule(module, f"{module}.weight", key, b_key, int(r), scaling))
    if not modules:
        raise LoadError(f"{weights.name} holds no lora_A / lora_B weights.")
    return LoraAdapter(folder, tuple(modules), source, cfg.get("fan_in_fan_out") is True, cfg)


class _DeltaSource:
    """Tensors of ΔW per adapted module (lazily computed)."""

    def __init__(self, adapter: LoraAdapter, shapes: Mapping[str, tuple[int, ...]]):
        self.adapter = adapter
        self._modules = {m.weight_key: m for m in adapter.modules}
        self._shapes = shapes

    def keys(self) -> list[str]:
        return list(self._modules)

    def meta(self, key: str) -> TensorMeta:
        return TensorMeta(self._shapes[key], "float32")

    def load(self, key: str) -> torch.Tensor:
        return self.adapter.delta(self._modules[key])


class _MergedSource:
    """The base's tensors, with W + ΔW for the adapted weights (lazily computed)."""

    def __init__(self, base: TensorSource, adapter: LoraAdapter):
        self._base = base
        self._adapter = adapter
        self._modules = {m.weight_key: m for m in adapter.modules}

    def keys(self) -> list[str]:
        return self._base.keys()

    def meta(self, key: str) -> TensorMeta:
        meta = self._base.meta(key)
        return TensorMeta(meta.shape, "float32") if key in self._modules else meta

    def load(self, key: str) -> torch.Tensor:
        W = self._base.load(key)
        module = self._modules.get(key)
        if module is None:
            return W
        delta = self._adapter.delta(module, dtype=torch.float64)
        return (W.to(torch.float64) + delta.reshape(W.shape)).to(torch.float32)


def _shape(adapter: LoraAdapter, module: LoraModule) -> tuple[int, int]:
    out = adapter.source.meta(module.b_key).shape[0]
    inp = adapter.source.meta(module.a_key).shape[1]
    return (inp, out) if adapter.fan_in_fan_out else (out, inp)


def adapter_of(net: Network) -> LoraAdapter | None:
    """The adapter a :func:`lora_network` was opened from (None for any other Network)."""
    source = net.source
    return source.adapter if isinstance(source, _DeltaSource) else None


def lora_network(path: str | Path | LoraAdapter, *, name: str | None = None) -> Network:
    """The adapter alone as a Network: one layer per adapted module, its matrix ΔW."""
    adapter = path if isinstance(path, LoraAdapter) else read_adapter(path)
    shapes = {m.weight_key: _shape(adapter, m) for m in adapter.modules}
    return Network(
        _DeltaSource(adapter, shapes),
        name=name or f"{adapter.path.name} (ΔW = B·A·scaling)",
        origin=str(adapter.path),
        kinds=dict.fromkeys(shapes, "linear"),
    )


def apply_lora(
    base: Network, path: str | Path | LoraAdapter, *, name: str | None = None
) -> Network:
    """``base`` with the adapter merged in (module docstring); weights only. Raises
    ``DataError`` naming a module the base does not have or whose shape differs."""
    adapter = path if isinstance(path, LoraAdapter) else read_adapter(path)
    source = base.source
    keys = set(source.keys())
    for m in adapter.modules:
        if m.weight_key not in keys:
            raise DataError(f"the adapter changes {m.weight_key}, which {base.name} does not have.")
        shape = tuple(source.meta(m.weight_key).shape)
        want = _shape(adapter, m)
        if shape != want:
            raise DataError(
                f"the adapter's ΔW of {m.module} is {want} but {base.name} stores {shape}."
            )
    return Network(
        _MergedSource(source, adapter),
        name=name or f"{base.name} + {adapter.path.name}",
        origin=f"{base.origin} + {adapter.path}",
    )
