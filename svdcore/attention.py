"""Attention heads of a transformer checkpoint: the head structure from its ``config.json``,
per-head matrix views of the q/k/v/o projections (fused QKV tensors split), and the spectra
of each head's circuits in factored form.

Conventions (torch ``nn.Linear``, rows = outputs): head ``h`` of H query heads reads
W_Q^h = rows ``h*d .. (h+1)*d`` of W_Q (d x d_model, d = head_dim); with grouped-query
attention (Hkv key/value heads, H / Hkv query heads per group) it attends with key/value
head ``g = h // (H / Hkv)``: W_K^g, W_V^g (d x d_model); it writes through W_O^h = columns
``h*d .. (h+1)*d`` of W_O (d_model x d). Its circuits (Elhage et al. 2021, TransformerLens):

    W_QK^h = W_Q^h^T W_K^g   (d_model x d_model; score = x_q^T W_QK x_k / sqrt(d))
    W_OV^h = W_O^h W_V^g     (d_model x d_model; what the head adds for each attended x)

Both have rank <= d. Their singular values come from the factors without forming the
d_model x d_model product: for A (m x r) and B (r x n), A = Q_a R_a and B^T = Q_b R_b (thin
QR), so A B = Q_a (R_a R_b^T) Q_b^T and the singular values of A B are those of the r x r
matrix R_a R_b^T (TransformerLens' ``FactoredMatrix``), O((m + n) r^2) work in float64.

Fused QKV tensors are split by their layout: ``concat`` ([Q; K; V], Phi-3 ``qkv_proj``, MPT
``Wqkv``, GPT-2 ``c_attn``, ``nn.MultiheadAttention.in_proj_weight``, Falcon multi-query),
``per_head`` (GPT-NeoX and BLOOM ``query_key_value``: q, k, v of each head in turn) and
``grouped`` (Falcon's new decoder architecture: each key/value group's queries, then its k
and v). GPT-2's ``Conv1D`` weights are stored (in, out) and are transposed here.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .exceptions import DataError, LoadError
from .network import Network, ViewInfo

__all__ = [
    "HEAD_COLUMNS",
    "AttentionBlock",
    "HeadCircuit",
    "HeadSlice",
    "PartSlice",
    "TransformerConfig",
    "attach_attention",
    "attention_blocks",
    "factored_singular_values",
    "head_circuits",
    "head_table",
    "head_weights",
    "read_transformer_config",
    "transformer_config",
]

# (q, k, v, o) names of separate projections; o may sit in the parent module (BERT)
_SEPARATE = (
    ("q_proj", "k_proj", "v_proj", ("o_proj", "out_proj", "dense", "c_proj")),
    ("query", "key", "value", ("dense",)),
    ("q_lin", "k_lin", "v_lin", ("out_lin",)),
    ("wq", "wk", "wv", ("wo",)),
    ("q", "k", "v", ("o",)),
)
_FUSED = ("qkv_proj", "c_attn", "query_key_value", "Wqkv", "in_proj_weight", "qkv")
_FUSED_OUT = ("o_proj", "out_proj", "dense", "c_proj", "proj", "out")
_CONV1D_MODELS = {"gpt2"}  # transformers' Conv1D: weights stored (in, out)
_PER_HEAD_MODELS = {"gpt_neox", "bloom"}
_FALCON = {"falcon", "RefinedWeb", "RefinedWebModel"}


_ATTACHED: weakref.WeakKeyDictionary[Network, tuple[AttentionBlock, ...]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class TransformerConfig:
    """Head structure: ``n_heads`` query heads and ``n_kv_heads`` key/value heads of
    ``head_dim`` each, residual width ``hidden_size``; ``layout`` of fused QKV tensors."""

    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden_size: int
    model_type: str = ""
    layout: str = "concat"  # "concat" | "per_head" | "grouped"

    @property
    def group(self) -> int:
        """Query heads per key/value head."""
        return self.n_heads // self.n_kv_heads


def _int(cfg: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = cfg.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DataError(f"config.json: {name} must be a positive integer, got {value!r}.")
            return value
    return None


def transformer_config(cfg: Mapping[str, Any]) -> TransformerConfig | None:
    """The head structure of a Hugging Face ``config.json`` mapping (a multimodal model's
    ``text_config``), or None when it names no attention heads. Raises ``DataError`` for
    inconsistent numbers (heads not dividing the width, key/value heads not dividing the
    query heads)."""
    if not isinstance(cfg, Mapping):
        raise DataError("config.json must hold a JSON object.")
    if _int(cfg, "num_attention_heads", "n_head", "num_heads", "n_heads") is None and (
        isinstance(cfg.get("text_config"), Mapping)
    ):
        cfg = cfg["text_config"]
    heads = _int(cfg, "num_attention_heads", "n_head", "num_heads", "n_heads")
    hidden = _int(cfg, "hidden_size", "n_embd", "d_model", "dim")
    if heads is None or hidden is None:
        return None
    model_type = str(cfg.get("model_type", ""))
    kv = _int(cfg, "num_key_value_heads", "num_kv_heads", "n_kv_heads", "multi_query_group_num")
    if kv is None:
        kv = 1 if cfg.get("multi_query") is True else heads
    head_dim = _int(cfg, "head_dim", "d_kv")
    if head_dim is None:
        if hidden % heads:
            raise DataError(
                f"config.json: hidden size {hidden} is not a multiple of {heads} heads and "
                "no head_dim is given."
            )
        head_dim = hidden // heads
    if heads % kv:
        raise DataError(
            f"config.json: {heads} attention heads cannot share {kv} key/value heads "
            "(grouped-query attention needs a whole number of query heads per group)."
        )
    layout = "concat"
    if model_type in _PER_HEAD_MODELS:
        layout = "per_head"
    elif model_type in _FALCON and cfg.get("new_decoder_architecture") is True:
        layout = "grouped"
    elif model_type in _FALCON and cfg.get("multi_query") is not True:
        layout = "per_head"  # Falcon without multi-query: (H, 3, d) as GPT-NeoX
    return TransformerConfig(heads, kv, head_dim, hidden, model_type, layout)


def read_transformer_config(path: str | Path) -> TransformerConfig | None:
    """:func:`transformer_config` of a ``config.json`` file (read as JSON, never run), or of
    the one in folder ``path``; None when there is none or it names no heads."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    if not p.is_file():
        return None
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LoadError(f"{p} is not a readable JSON config: {err}") from None
    return transformer_config(cfg)


@dataclass(frozen=True)
class HeadSlice:
    """One head's part of a projection, as an (out x in) matrix: ``index`` rows (``axis``
    0) or columns (``axis`` 1, W_O) of the layer's matrix, transposed first when the layer
    is stored (in, out) (GPT-2's Conv1D). A :class:`svdcore.network.DerivedView`."""

    axis: int
    index: tuple[int, int]  # [start, stop) in the (out x in) matrix
    transposed: bool
    role: str  # "q", "k", "v", "o"
    head: int
    width: int  # the other side: d_model

    def __call__(self, matrix: torch.Tensor) -> torch.Tensor:
        W = matrix.T if self.transposed else matrix
        a, b = self.index
        return W[a:b] if self.axis == 0 else W[:, a:b]

    def view_info(self) -> ViewInfo:
        d = self.index[1] - self.index[0]
        name = "key/value" if self.role in ("k", "v") else "query" if self.role == "q" else ""
        head = f"{name} head {self.head}".strip()
        if self.axis == 1:
            return ViewInfo((self.width, d), "residual stream (d_model)", f"{head} dimension")
        return ViewInfo((d, self.width), f"{head} dimension", "residual stream (d_model)")


@dataclass(frozen=True)
class PartSlice:
    """All the heads of one role (q, k or v) of a fused QKV tensor, in head order: the
    (n_heads * d x d_model) matrix that role's own projection would be (whatever the fused
    layout). A :class:`svdcore.network.DerivedView`."""

    heads: tuple[HeadSlice, ...]

    def __call__(self, matrix: torch.Tensor) -> torch.Tensor:
        return torch.cat([h(matrix) for h in self.heads], dim=0)

    def view_info(self) -> ViewInfo:
        h = self.heads[0]
        rows = sum(x.index[1] - x.index[0] for x in self.heads)
        name = {"q": "query", "k": "key", "v": "value"}[h.role]
        return ViewInfo((rows, h.width), f"{name} (head x head_dim)", "residual stream (d_model)")


@dataclass(frozen=True)
class AttentionBlock:
    """One attention layer: the layers holding W_Q, W_K, W_V, W_O (the same layer for a
    fused QKV tensor), and the view name of each head's part: ``views[role][h]``."""

    name: str
    q: str
    k: str
    v: str
    o: str | None
    views: Mapping[str, tuple[str, ...]]
    config: TransformerConfig
    slices: Mapping[str, tuple[HeadSlice, ...]] = field(default_factory=dict, compare=False)

    @property
    def fused(self) -> bool:
        return self.q == self.k == self.v


def _parent(name: str) -> tuple[str, str]:
    parent, _, last = name.rpartition(".")
    return parent, last


def _find_out(names: set[str], parent: str, candidates: tuple[str, ...]) -> str | None:
    for c in candidates:
        if f"{parent}.{c}" in names:
            return f"{parent}.{c}"
    grand = _parent(parent)[0]  # BERT: attention.self.query -> attention.output.dense
    for c in (f"output.{x}" for x in candidates):
        if grand and f"{grand}.{c}" in names:
            return f"{grand}.{c}"
    return None


def _oriented(shape: tuple[int, ...], out: int, inp: int, conv1d: bool) -> bool | None:
    """True when a 2-D tensor of ``shape`` holds an (out x in) map stored (in, out)."""
    if len(shape) != 2:
        return None
    if conv1d and tuple(shape) == (inp, out):
        return True
    if tuple(shape) == (out, inp):
        return False
    return True if tuple(shape) == (inp, out) else None


def _ranges(cfg: TransformerConfig, role: str, fused: bool) -> list[tuple[int, int]]:
    """Each head's [start, stop) rows of ``role`` in its (fused or own) projection."""
    d, H, Hkv, g = cfg.head_dim, cfg.n_heads, cfg.n_kv_heads, cfg.group
    n = H if role in ("q", "o") else Hkv
    if not fused or role == "o":
        return [(h * d, (h + 1) * d) for h in range(n)]
    if cfg.layout == "per_head":  # (H, 3, d): q, k, v of each head
        part = "qkv".index(role)
        return [((3 * h + part) * d, (3 * h + part + 1) * d) for h in range(n)]
    if cfg.layout == "grouped":  # (Hkv, g + 2, d): the group's queries, then k, v
        slot = [h // g * (g + 2) + h % g for h in range(n)] if role == "q" else None
        if slot is None:
            slot = [j * (g + 2) + g + (role == "v") for j in range(n)]
        return [(i * d, (i + 1) * d) for i in slot]
    offset = {"q": 0, "k": H * d, "v": (H + Hkv) * d}[role]
    return [(offset + h * d, offset + (h + 1) * d) for h in range(n)]


def attach_attention(net: Network, config: TransformerConfig) -> tuple[AttentionBlock, ...]:
    """Find the attention layers of ``net`` by their names (module docstring), check their
    shapes against ``config``, and add one matrix view per head to each projection
    ("head 3"; in a fused tensor "q head 3", "k head 0" ..., and "q" / "k" / "v" for the whole
    part, in head order). Returns the blocks found, in
    layer order (none: an empty tuple); a projection whose shape does not fit the config
    is left alone."""
    names = {layer.name for layer in net.layers if layer.viewable}
    shapes = {layer.name: layer.shape for layer in net.layers}
    conv1d = config.model_type in _CONV1D_MODELS
    d_model, d = config.hidden_size, config.head_dim
    sizes = {"q": config.n_heads * d, "k": config.n_kv_heads * d, "v": config.n_kv_heads * d}
    blocks: list[AttentionBlock] = []
    for layer in net.layers:
        if layer.name not in names:
            continue
        parent, last = _parent(layer.name)
        found: dict[str, tuple[str, bool]] = {}
        if last in _FUSED:
            t = _oriented(shapes[layer.name], sum(sizes.values()), d_model, conv1d)
            if t is None:
                continue
            found = {r: (layer.name, t) for r in "qkv"}
            out = _find_out(names, parent, _FUSED_OUT)
        else:
            group = next((g for g in _SEPARATE if g[0] == last), None)
            if group is None:
                continue
            for role, suffix in zip("qkv", group[:3], strict=True):
                full = f"{parent}.{suffix}" if parent else suffix
                t = _oriented(shapes.get(full, ()), sizes[role], d_model, conv1d)
                if full not in names or t is None:
                    break
                found[role] = (full, t)
            if len(found) < 3:
                continue
            out = _find_out(names, parent, group[3])
        if out is not None:
            t = _oriented(shapes[out], d_model, config.n_heads * d, conv1d)
            out = None if t is None else out
            if out is not None:
                found["o"] = (out, t)
        fused = found["q"][0] == found["k"][0]
        views: dict[str, tuple[str, ...]] = {}
        slices: dict[str, tuple[HeadSlice, ...]] = {}
        for role, (lname, transposed) in found.items():
            prefix = f"{role} " if fused and role != "o" else ""
            made = {
                f"{prefix}head {h}": HeadSlice(
                    axis=1 if role == "o" else 0,
                    index=span,
                    transposed=transposed,
                    role=role,
                    head=h,
                    width=d_model,
                )
                for h, span in enumerate(_ranges(config, role, fused))
            }
            part = {role: PartSlice(tuple(made.values()))} if fused and role != "o" else {}
            net.add_views(lname, {**part, **made})  # "q", then "q head 0" ...
            views[role] = tuple(made)
            slices[role] = tuple(made.values())
        blocks.append(
            AttentionBlock(
                name=parent,
                q=found["q"][0],
                k=found["k"][0],
                v=found["v"][0],
                o=found.get("o", (None,))[0],
                views=views,
                config=config,
                slices=slices,
            )
        )
    _ATTACHED[net] = tuple(blocks)
    return tuple(blocks)


def attention_blocks(net: Network) -> tuple[AttentionBlock, ...]:
    """The blocks :func:`attach_attention` found in ``net`` (empty when it was not run)."""
    return _ATTACHED.get(net, ())


def head_weights(
    net: Network, block: AttentionBlock, head: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """W_Q^h, W_K^g, W_V^g (d x d_model) and W_O^h (d_model x d) of query head ``head``
    (module docstring), float64; W_O is None where the block has no output projection."""
    cfg = block.config
    if not (isinstance(head, int) and 0 <= head < cfg.n_heads):
        raise DataError(f"head must be in 0..{cfg.n_heads - 1}, got {head!r}.")
    g = head // cfg.group

    def part(role: str, index: int) -> np.ndarray:
        layer = getattr(block, role)
        return net.matrix(layer, view=block.views[role][index], dtype=torch.float64).numpy()

    W_O = part("o", head) if block.o is not None else None
    return part("q", head), part("k", g), part("v", g), W_O


def factored_singular_values(
    A: np.ndarray | torch.Tensor, B: np.ndarray | torch.Tensor
) -> np.ndarray:
    """Singular values (descending, min(m, r, n) of them) of A @ B for A (m x r), B (r x n),
    in float64 from the thin QRs of A and B^T (module docstring); A @ B is never formed."""
    a = torch.as_tensor(np.asarray(A, dtype=np.float64))
    b = torch.as_tensor(np.asarray(B, dtype=np.float64))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise DataError(f"factors of shapes {tuple(a.shape)} and {tuple(b.shape)} do not chain.")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise DataError("the factors hold NaN or Inf values.")
    _, Ra = torch.linalg.qr(a)  # (min(m, r), r)
    _, Rb = torch.linalg.qr(b.T)  # (min(n, r), r)
    return torch.linalg.svdvals(Ra @ Rb.T).numpy()


@dataclass(frozen=True)
class HeadCircuit:
    """The spectra of one head's circuits: ``qk`` of W_QK, ``ov`` of W_OV (None without
    W_O), each min(d, d_model) singular values, descending."""

    block: str
    head: int
    kv_head: int
    qk: np.ndarray
    ov: np.ndarray | None


def head_circuits(net: Network, block: AttentionBlock) -> list[HeadCircuit]:
    """:class:`HeadCircuit` of every query head of ``block`` (factored, float64); each
    projection is read once for all its heads."""
    cfg = block.config
    mats = {
        role: net.matrix(getattr(block, role), dtype=torch.float64)
        for role in ("q", "k", "v", "o")
        if getattr(block, role) is not None
    }

    def part(role: str, index: int) -> np.ndarray:
        return block.slices[role][index](mats[role]).numpy()

    out = []
    for h in range(cfg.n_heads):
        g = h // cfg.group
        qk = factored_singular_values(part("q", h).T, part("k", g))
        ov = factored_singular_values(part("o", h), part("v", g)) if "o" in mats else None
        out.append(HeadCircuit(block.name, h, g, qk, ov))
    return out


HEAD_COLUMNS = (
    "block",
    "head",
    "kv_head",
    "qk_sigma1",
    "qk_frobenius",
    "qk_stable_rank",
    "ov_sigma1",
    "ov_frobenius",
    "ov_stable_rank",
)


def _norms(s: np.ndarray | None) -> tuple[float, float, float]:
    """(sigma_1, ||.||_F, stable rank ||.||_F^2 / sigma_1^2) of a spectrum; NaN without one."""
    if s is None or s.size == 0 or s[0] == 0:
        return (float("nan"),) * 3
    energy = float(np.sum(s * s))
    return float(s[0]), energy**0.5, energy / float(s[0]) ** 2


def head_table(net: Network, blocks: tuple[AttentionBlock, ...] | None = None) -> Any:
    """One row per query head of every block (``blocks``: default
    :func:`attention_blocks`): its key/value head and the norms of its W_QK and W_OV
    (``HEAD_COLUMNS``), as a pandas DataFrame."""
    import pandas as pd

    rows = []
    for block in attention_blocks(net) if blocks is None else blocks:
        for c in head_circuits(net, block):
            rows.append((block.name, c.head, c.kv_head, *_norms(c.qk), *_norms(c.ov)))
    return pd.DataFrame(rows, columns=list(HEAD_COLUMNS))
