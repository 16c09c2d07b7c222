"""Attention heads for the page: the circuits of the block a selected projection is in.

`HeadsService` is built once by `app.services.Services` with what it needs. For a layer
that is one of a block's q / k / v / o projections (a Hugging Face folder opened with its
config.json: `svdcore.attention`), the singular values of every head's W_QK and W_OV from
their factors, cached under the content keys of the block's projections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import svdcore as sc
from app.services.caches import ResultCaches
from app.services.registry import ModelRegistry

__all__ = ["HeadsData", "HeadsService"]


@dataclass(frozen=True)
class HeadsData:
    """The block's heads: ``qk[h]``, ``ov[h]`` (None without W_O) descending singular values."""

    block: sc.AttentionBlock
    qk: list[np.ndarray]
    ov: list[np.ndarray] | None
    kv_heads: list[int]
    table: Any  # svdcore.attention.head_table rows of this block (pandas)


class HeadsService:
    """The Spectrum tab's heads panel (see the module docstring)."""

    def __init__(self, registry: ModelRegistry, caches: ResultCaches) -> None:
        self.registry = registry
        self.caches = caches

    def block(self, model_id: str, layer: str, session: str | None) -> sc.AttentionBlock | None:
        """The attention block whose q, k, v or o projection ``layer`` is, or None."""
        net = self.registry.open(model_id, session).net
        for block in sc.attention_blocks(net):
            if layer in (block.q, block.k, block.v, block.o):
                return block
        return None

    def heads(self, model_id: str, layer: str, session: str | None) -> HeadsData | None:
        """The circuits of ``layer``'s block (None when it is in none)."""
        block = self.block(model_id, layer, session)
        if block is None:
            return None
        net = self.registry.open(model_id, session).net
        layers = sorted({n for n in (block.q, block.k, block.v, block.o) if n is not None})
        key = sc.cache.make_key(
            "heads", block.config, *[net.matrix_key(n) for n in layers], block.views
        )

        def run() -> HeadsData:
            circuits = sc.head_circuits(net, block)
            has_ov = all(c.ov is not None for c in circuits)
            return HeadsData(
                block=block,
                qk=[c.qk for c in circuits],
                ov=[c.ov for c in circuits] if has_ov else None,
                kv_heads=[c.kv_head for c in circuits],
                table=sc.head_table(net, (block,)),
            )

        return self.caches.shared_cache.get_or_compute(key, run)
